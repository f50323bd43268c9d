"""The AggregationSchedule parameter's grammar: EventBridge's rate and cron expressions, as
the EventBridge user guide documents them ("Using cron and rate expressions to schedule rules",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html).

One regular expression, built here, is both the parameter's AllowedPattern (so CloudFormation
refuses a bad value before any resource changes) and the check `bin/deploy --parameter` runs
before any AWS call; `schedule_problem` adds the one-line reason. Only what the guide
documents is accepted: an expression PutRule might take but the guide does not describe is
refused (fail closed; the error names the documented form).

- rate(value unit): value a positive integer; unit minute|minutes|hour|hours|day|days,
  singular when the value is 1 and plural otherwise ("rate(1 minutes)" and "rate(5 minute)"
  are refused by PutRule).
- cron(Minutes Hours Day-of-month Month Day-of-week Year): six fields separated by one space.
  Values: 0-59, 0-23, 1-31, 1-12 or JAN-DEC, 1-7 or SUN-SAT, 1970-2199. Wildcards: `,` `-`
  `*` `/` everywhere but Day-of-week (no `/`); `?` `L` `W` in Day-of-month; `?` `L` `#` in
  Day-of-week. Exactly one of Day-of-month and Day-of-week is `?` ("If you specify a value or
  a * in one of the fields, you must use a ? in the other"); a `#` expression stands alone.
"""

from __future__ import annotations

import re

_MONTHS = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
_DAYS = "SUN|MON|TUE|WED|THU|FRI|SAT"
_MINUTE = "[0-5]?[0-9]"
_HOUR = "[01]?[0-9]|2[0-3]"
_DOM = "0?[1-9]|[12][0-9]|3[01]"
_MONTH = f"0?[1-9]|1[0-2]|{_MONTHS}"
_DOW = f"[1-7]|{_DAYS}"
_YEAR = "19[7-9][0-9]|2[01][0-9][0-9]"


def _list(*atoms: str) -> str:
    atom = "|".join(atoms)
    return f"(?:{atom})(?:,(?:{atom}))*"


def _ranged(value: str, step: str) -> str:
    """`*`, `v` or `v-v`, each optionally `/step`."""
    return f"(?:\\*|(?:{value})(?:-(?:{value}))?)(?:/(?:{step}))?"


_MINUTES_FIELD = _list(_ranged(_MINUTE, "[1-9]|[1-5][0-9]"))
_HOURS_FIELD = _list(_ranged(_HOUR, "[1-9]|1[0-9]|2[0-3]"))
_DOM_FIELD = _list(_ranged(_DOM, "[1-9]|[12][0-9]|3[01]"), "L", "LW", f"(?:{_DOM})W")
_MONTH_FIELD = _list(_ranged(_MONTH, "[1-9]|1[0-2]"))
_DOW_LIST = _list("\\*", f"(?:{_DOW})(?:-(?:{_DOW}))?", "L", "[1-7]L")
_DOW_FIELD = f"(?:{_DOW_LIST}|(?:{_DOW})#[1-5])"
_YEAR_FIELD = _list(_ranged(_YEAR, "[1-9][0-9]?[0-9]?"))

_RATE = r"rate\((?:1 (?:minute|hour|day)|(?:[2-9]|[1-9][0-9]+) (?:minutes|hours|days))\)"
_CRON = (
    f"cron\\(({_MINUTES_FIELD}) ({_HOURS_FIELD}) "
    f"(?:({_DOM_FIELD}) ({_MONTH_FIELD}) \\?|\\? ({_MONTH_FIELD}) ({_DOW_FIELD})) ({_YEAR_FIELD})\\)"
)
SCHEDULE_PATTERN = f"^(?:{_RATE}|{_CRON})$"
_PATTERN = re.compile(SCHEDULE_PATTERN)

_FIELDS = ("Minutes", "Hours", "Day-of-month", "Month", "Day-of-week", "Year")
_FIELD_PATTERNS = (_MINUTES_FIELD, _HOURS_FIELD, _DOM_FIELD, _MONTH_FIELD, _DOW_FIELD, _YEAR_FIELD)


def schedule_problem(expression: str) -> str | None:
    """None when `expression` is a documented EventBridge schedule; else the one-line reason."""
    if _PATTERN.match(expression):
        return None
    rate = re.fullmatch(r"rate\((\S+) (\S+)\)", expression)
    if expression.startswith("rate("):
        if rate is None or not rate.group(1).isdigit() or int(rate.group(1)) < 1:
            return f"{expression!r}: a rate is rate(VALUE UNIT) with VALUE a positive whole number"
        value, unit = int(rate.group(1)), rate.group(2)
        if unit.rstrip("s") not in ("minute", "hour", "day"):
            return f"{expression!r}: the unit is minute(s), hour(s) or day(s)"
        wanted = unit.rstrip("s") if value == 1 else unit.rstrip("s") + "s"
        return f"{expression!r}: EventBridge wants rate({value} {wanted}) (singular for 1, plural otherwise)"
    cron = re.fullmatch(r"cron\((.*)\)", expression)
    if cron is None:
        return f"{expression!r}: not rate(VALUE UNIT) or cron(Minutes Hours Day-of-month Month Day-of-week Year)"
    fields = cron.group(1).split(" ")
    if len(fields) != len(_FIELDS):
        return f"{expression!r}: a cron expression has six fields separated by one space, this one {len(fields)}"
    dom, dow = fields[2], fields[4]
    if (dom == "?") == (dow == "?"):
        return f"{expression!r}: exactly one of Day-of-month and Day-of-week must be ?"
    for name, value, pattern in zip(_FIELDS, fields, _FIELD_PATTERNS, strict=True):
        if value == "?" and name in ("Day-of-month", "Day-of-week"):
            continue
        if not re.fullmatch(pattern, value):
            return f"{expression!r}: the {name} field {value!r} is outside EventBridge's documented values"
    return f"{expression!r}: not a documented EventBridge schedule expression"  # pragma: no cover - belt and braces
