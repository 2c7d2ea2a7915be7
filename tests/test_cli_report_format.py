"""A failing comparison never reads as meeting its threshold, whatever the rounding."""

import pytest

from audit.report.format import fmt_compared


@pytest.mark.parametrize("value, threshold, direction, expected", [
    (0.5997, 0.6, "min", ("0.5997", "0.6000")),  # fails: must not read 0.600 >= 0.600
    (0.502, 0.5, "max", ("0.502", "0.500")),
    (0.5004, 0.5, "max", ("0.5004", "0.5000")),
    (0.6, 0.6, "min", ("0.600", "0.600")),  # meets it exactly: reads as meeting it
    (0.4, 0.5, "max", ("0.400", "0.500")),
    (None, 0.5, "max", ("\u2014", "0.500")),
])
def test_written_numbers_compare_as_the_true_ones(value, threshold, direction, expected):
    assert fmt_compared(value, threshold, direction) == expected


def test_differences_below_every_digit_show_every_digit():
    value, threshold = fmt_compared(0.5 + 1e-9, 0.5, "max")
    assert float(value) > float(threshold)
