"""Statistics shared by every dataset: bootstrap intervals over the design's unit (``bootstrap``), the
transfer correlation (``transfer``) and its noise-corrected form (``transfer_eiv``), paired comparisons
with an approved run (``regression``), the noise-aware selection-bias estimands over twin pairs
(``selection``), calibrated intervals (``intervals``), verdicts (``verdicts``), multiplicity
(``multiplicity``) and simulated models with known truth (``simulate``). docs/statistics.md says what
each estimates and how well its gates are calibrated."""
