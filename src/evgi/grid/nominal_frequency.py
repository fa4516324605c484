"""The nominal frequency of the area power system, and how 1547-2018's settings carry over to
one that is not 60 Hz.

1547-2018 gives its frequency settings (trip thresholds, enter service window, droop dead
bands) in Hz for 60 Hz systems. On a system of another nominal frequency evgi keeps each at the
same per unit of nominal: 62.0 Hz becomes 51.67 Hz at 50 Hz, a 36 mHz dead band 30 mHz. That
reading follows the standard's own per-unit droop and keeps every margin in proportion; the
operator may still set other values over 2030.5 (must-trip curves, opModFreqDroop).
"""

from __future__ import annotations

from evgi.core.errors import ValidationError

# The nominal frequency 1547-2018's tables are written for.
TABLE_HZ = 60.0


def rescaled(nominal_hz: float, written_for_hz: float) -> float:
    """The factor that carries a frequency setting for `written_for_hz` to `nominal_hz`."""
    if nominal_hz <= 0:
        raise ValidationError(f"a nominal frequency must be positive, got {nominal_hz}")
    return nominal_hz / written_for_hz
