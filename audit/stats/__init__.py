"""Statistics: noise-aware estimands, calibrated intervals, transfer, multiplicity."""
