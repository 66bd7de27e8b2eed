"""Cron expressions as Cloud Scheduler, Dataplex and Airflow all accept them: 5 unix-cron fields.

croniter (the parser Airflow uses) decides whether an expression is valid; this module only
narrows it to the portable subset (no seconds field, no `@hourly`, no L/W/#/? extensions,
which Cloud Scheduler refuses; no backwards range such as `22-2`, which croniter wraps around
midnight while classic cron refuses it; no one-value range such as `5-5`, which croniter reads as
the whole field while classic cron reads it as 5) and words the refusal for a person: which field, its
range, and a suggestion where one is obvious.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass

from croniter import CroniterBadDateError, CroniterError, croniter


@dataclass(frozen=True)
class Field:
    """One of the five fields: its values `low`-`high` (where a range wraps around), and its names
    (`names[0]` stands for `low`)."""

    name: str
    bounds: str  # as a person reads them
    low: int
    high: int
    names: tuple[str, ...] = ()

    def number(self, token: str) -> int:
        return self.names.index(token.upper()) + self.low if token.upper() in self.names else int(token)

    def like(self, number: int, token: str) -> str:
        """`number` written as `token` is: a name if it is one."""
        return self.names[number - self.low] if token.isalpha() else str(number)


MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
DAY_OF_WEEK = Field("day of week", "0-7 or SUN-SAT", 0, 6, DAYS)  # 7 is Sunday again
FIELDS = (Field("minute", "0-59", 0, 59), Field("hour", "0-23", 0, 23), Field("day of month", "1-31", 1, 31),
          Field("month", "1-12 or JAN-DEC", 1, 12, MONTHS), DAY_OF_WEEK)
SHORTCUTS = {
    "hourly": "0 * * * *", "daily": "0 0 * * *", "midnight": "0 0 * * *", "weekly": "0 0 * * 0",
    "monthly": "0 0 1 * *", "yearly": "0 0 1 1 *", "annually": "0 0 1 1 *",
}
EXAMPLE = "'15 * * * *' (minute 15 of every hour)"


class CronError(ValueError):
    """A refused expression; `suggestion` is a corrected expression when one is obvious."""

    def __init__(self, message: str, suggestion: str | None = None):
        self.suggestion = suggestion
        super().__init__(message + (f" (did you mean {suggestion!r}?)" if suggestion else ""))


def _field_ok(index: int, value: str) -> bool:
    probe = ["*"] * 5
    probe[index] = value
    return croniter.is_valid(" ".join(probe))


def _misread_range(field: Field, value: str) -> tuple[str, str, str] | None:
    """The first `a-b` range of a field that croniter and classic cron read differently: (the range,
    what is wrong with it, the field rewritten or "" when no rewrite is obvious).

    croniter reads a range from a value to itself (5-5; in the day of week also 7-0, 7 and 0 both
    being Sunday) as the whole field, and a backwards range (22-2, 7-1) as wrapping around; classic
    cron reads 5-5 as 5 alone and refuses a backwards range. A one-value range is rewritten
    as that value (what its author meant), a backwards one as the list croniter reads it as."""
    items = value.split(",")
    for position, item in enumerate(items):
        span, step, _ = item.partition("/")
        bounds = span.split("-")
        if len(bounds) != 2 or "*" in bounds:
            continue
        low, high = field.number(bounds[0]), field.number(bounds[1])
        if low == high or (field is DAY_OF_WEEK and (low, high) == (7, 0)):  # 7-0: Sunday to Sunday, like 7-7 and 0-0
            classic = "refuses it" if low > high else f"reads it as {bounds[0]} alone"
            rewritten, problem = bounds[0], f"names one value, which croniter reads as the whole field (classic cron {classic}); write the value"
        elif low > high:
            head = f"{bounds[0]}-{field.like(field.high, bounds[0])}" if low < field.high else bounds[0]
            tail = f"{field.like(field.low, bounds[1])}-{bounds[1]}" if high > field.low else bounds[1]
            rewritten, problem = f"{head},{tail}", "runs backwards (croniter wraps it around, classic cron refuses it); write it as a list"
        else:
            continue
        # this item rewritten in its place (not the first text that reads like it: 12-15,2-1)
        return span, problem, "" if step else ",".join([*items[:position], rewritten, *items[position + 1:]])
    return None


def check(expression: str) -> str:
    """Return the expression unchanged, or raise CronError saying what is wrong with it."""
    text = expression.strip()
    word = text.lstrip("@").lower()
    if word in SHORTCUTS:
        raise CronError(f"expected 5 cron fields (minute hour day-of-month month day-of-week), not the shortcut {text!r}",
                        SHORTCUTS[word])
    fields = text.split()
    if len(fields) == 6:
        raise CronError("expected 5 cron fields; a 6th (seconds) field is not accepted by Cloud Scheduler", " ".join(fields[1:]))
    if len(fields) != 5:
        raise CronError(f"expected 5 cron fields (minute hour day-of-month month day-of-week), got {len(fields)}, e.g. {EXAMPLE}")
    for index, (field, value) in enumerate(zip(FIELDS, fields)):
        tokens = re.split(r"[,/-]", value)
        if not all(t == "*" or t.isdigit() or t.upper() in MONTHS + DAYS for t in tokens):
            raise CronError(f"{field.name} field {value!r}: expected numbers, *, ranges (a-b), steps (/n) or lists (a,b) in {field.bounds}")
        if not _field_ok(index, value):
            raise CronError(f"{field.name} field {value!r} is out of range {field.bounds}")
        misread = _misread_range(field, value)
        if misread:
            span, problem, rewritten = misread
            fixed = " ".join([*fields[:index], rewritten, *fields[index + 1:]]) if rewritten else None
            raise CronError(f"{field.name} field {value!r}: the range {span} {problem}", fixed)
    try:
        schedule = croniter(text, dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc))
        schedule.get_next(dt.datetime)
    except CroniterBadDateError:
        raise CronError(f"{text!r} never fires (no date matches every field)") from None
    except (CroniterError, ValueError) as exc:  # whatever croniter refuses that the checks above let through
        raise CronError(f"not a valid cron expression: {exc}") from None
    return expression


@functools.lru_cache(maxsize=None)
def max_gap_minutes(expression: str) -> int | None:
    """Longest time between two firings of a daily-pattern cron (day fields all `*`), in minutes,
    from croniter's own firing times over one day. None when the cron restricts days (it fires
    less often than daily, or unevenly) or is not valid. Cached: it walks a day of firings and
    is asked once per pipeline."""
    fields = expression.split()
    if len(fields) != 5 or fields[2:] != ["*", "*", "*"] or not croniter.is_valid(expression):
        return None
    day = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    schedule = croniter(expression, day - dt.timedelta(seconds=1))
    times = [schedule.get_next(dt.datetime)]
    while times[-1] < day + dt.timedelta(days=1):  # the first firing of the next day closes the cycle
        times.append(schedule.get_next(dt.datetime))
    return int(max((b - a).total_seconds() for a, b in zip(times, times[1:])) // 60)
