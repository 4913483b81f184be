"""Numbers as a report shows them: fixed decimals by kind, explicit signs, ASCII minus.

Every figure in a view goes through here, so the HTML and the PDF (and two runs of either) can
never show the same value two ways. Decimals: latency 2 below 100 ms and 1 from 100 ms up,
throughput 1, percentages 1, memory 1, seconds 2 (3 below one second). The minus sign is the
ASCII hyphen: the PDF's built-in fonts have no U+2212.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime

from cvplatform.benchmarking.constraints import METRICS, format_number, metric_label

NOT_MEASURED = "n/a"
RANGE_DASH = "\N{EN DASH}"  # in every PDF built-in font (WinAnsi), unlike U+2212

Formatter = Callable[[float], str]


def fixed(value: float, decimals: int) -> str:
    """``value`` with ``decimals`` digits after the point; never "-0.0"."""
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def ms(value: float) -> str:
    """A latency in ms, without the unit: "3.41", "152.3"."""
    return fixed(value, 2 if abs(value) < 100 else 1)


def fps(value: float) -> str:
    """A throughput in samples/s, without the unit: "293.2"."""
    return fixed(value, 1)


def percent(value: float) -> str:
    """A percentage without the sign: "97.2"."""
    return fixed(value, 1)


def megabytes(value: float) -> str:
    return fixed(value, 1)


def seconds(value: float) -> str:
    return fixed(value, 2 if abs(value) >= 1 else 3)


def signed(value: float, decimals: int = 1) -> str:
    """An explicit sign on anything but zero: "+12.3", "-4.0", "0.0"."""
    text = fixed(value, decimals)
    return text if text.startswith("-") or float(text) == 0 else f"+{text}"


def signed_percent(value: float) -> str:
    """A relative change: "+12.3%", "-4.0%", "0.0%"."""
    return f"{signed(value)}%"


def signed_pp(value: float) -> str:
    """A difference of two percentages, in percentage points, 2 decimals: "-0.28 pp"."""
    return f"{signed(value, 2)} pp"


def relative_change(value: float, base: float) -> float | None:
    """(value - base) / base in %; None when the base is zero (no meaningful ratio)."""
    return None if base == 0 else (value - base) / abs(base) * 100


# The formatter of each metric for table cells, whose header carries the unit.
_CELL: dict[str, Formatter] = {
    "ms": ms,
    "samples/s": fps,
    "%": percent,
    "MB": megabytes,
    "s": seconds,
    "pp": lambda value: fixed(value, 2),
}


def metric_number(metric: str, value: float | None) -> str:
    """A metric's value for a table cell under a header that names the unit; "n/a" for None."""
    if value is None or not math.isfinite(value):
        return NOT_MEASURED
    return _CELL[METRICS[metric].unit](value)


def metric_text(metric: str, value: float | None) -> str:
    """A metric's value with its unit, for sentences: "3.41 ms", "97.2%", "n/a"."""
    number = metric_number(metric, value)
    if number == NOT_MEASURED:
        return number
    unit = METRICS[metric].unit
    return f"{number}{unit}" if unit == "%" else f"{number} {unit}"


def unit_of(metric: str) -> str:
    return METRICS[metric].unit


def interval_text(metric: str, low: float, high: float) -> str:
    """A confidence interval for a cell: "3.30-3.52" with an en dash."""
    return f"{metric_number(metric, low)}{RANGE_DASH}{metric_number(metric, high)}"


def constraint_text(metric: str, op: str, value: float) -> str:
    """A constraint as a reader writes it: "p95 latency < 50 ms", "accuracy drop <= 1 pp"."""
    unit = METRICS[metric].unit if metric in METRICS else ""
    number = format_number(value)
    limit = f"{number}{unit}" if unit == "%" else f"{number} {unit}".rstrip()
    return f"{metric_label(metric)} {op} {limit}"


def timestamp_text(iso: str | None) -> str:
    """An ISO 8601 time as "2025-05-01 12:00:05 UTC"; text that is not one is shown as it is."""
    if not iso:
        return NOT_MEASURED
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + " UTC"


def count_text(count: int, singular: str, plural: str | None = None) -> str:
    """ "1 constraint", "2 constraints"."""
    return f"{count} {singular if count == 1 else plural or singular + 's'}"
