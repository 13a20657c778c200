"""Go's time formatting (reference-time layouts such as ``2006-01-02``) and duration strings (``1h30m``)."""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["format_layout", "parse_duration"]

# Longest first, so "2006" wins over "2" and "January" over "Jan".
_LAYOUT = re.compile(
    r"January|Monday|2006|-07:00|-0700|Z07:00|Z0700|MST|Jan|Mon|002|__2|_2|\.0+|\.9+|01|02|03|04|05|06|15|PM|pm|-07|1|2|3|4|5"
)
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]  # fmt: skip
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _offset(moment: dt.datetime, colon: bool, zulu: bool) -> str:
    delta = moment.utcoffset() or dt.timedelta(0)
    if zulu and not delta:
        return "Z"
    minutes = int(delta.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}" if colon else f"{sign}{hours:02d}{mins:02d}"


def _element(token: str, moment: dt.datetime) -> str:
    hour12 = moment.hour % 12 or 12
    simple = {
        "January": _MONTHS[moment.month - 1], "Jan": _MONTHS[moment.month - 1][:3],
        "Monday": _DAYS[moment.weekday()], "Mon": _DAYS[moment.weekday()][:3],
        "2006": f"{moment.year:04d}", "06": f"{moment.year % 100:02d}",
        "01": f"{moment.month:02d}", "1": str(moment.month),
        "02": f"{moment.day:02d}", "2": str(moment.day), "_2": f"{moment.day:>2d}",
        "002": f"{moment.timetuple().tm_yday:03d}", "__2": f"{moment.timetuple().tm_yday:>3d}",
        "15": f"{moment.hour:02d}", "03": f"{hour12:02d}", "3": str(hour12),
        "04": f"{moment.minute:02d}", "4": str(moment.minute), "05": f"{moment.second:02d}", "5": str(moment.second),
        "PM": "PM" if moment.hour >= 12 else "AM", "pm": "pm" if moment.hour >= 12 else "am",
        "MST": moment.tzname() or "UTC",
        "-07:00": _offset(moment, True, False), "-0700": _offset(moment, False, False),
        "Z07:00": _offset(moment, True, True), "Z0700": _offset(moment, False, True),
        "-07": _offset(moment, False, False)[:3],
    }  # fmt: skip
    if token in simple:
        return simple[token]
    digits = f"{moment.microsecond:06d}000"[: len(token) - 1]
    if token.startswith(".9"):
        digits = digits.rstrip("0")
        return "." + digits if digits else ""
    return "." + digits


def format_layout(layout: str, moment: dt.datetime) -> str:
    """Format ``moment`` with a Go layout (the reference time Mon Jan 2 15:04:05 MST 2006)."""
    return _LAYOUT.sub(lambda match: _element(match.group(), moment), layout)


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> dt.timedelta:
    """Go's ``time.ParseDuration``: ``300ms``, ``-1.5h``, ``2h45m``."""
    body = text.strip()
    sign = -1.0 if body.startswith("-") else 1.0
    body = body.lstrip("+-")
    if body == "0":
        return dt.timedelta(0)
    position, seconds = 0, 0.0
    for match in _DURATION_PART.finditer(body):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if not body or position != len(body):
        raise ValueError(f"invalid duration {text!r} (want e.g. 90s, 1h30m, 250ms)")
    return dt.timedelta(seconds=sign * seconds)
