"""Statistics shared by every dataset: bootstrap intervals over the design's unit (``bootstrap``), the
transfer correlation (``transfer``), and paired comparisons with an approved run (``regression``)."""
