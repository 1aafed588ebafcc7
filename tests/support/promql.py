"""Just enough PromQL reading for tests: which metric names an expression uses (stdlib only).

Strings, label matchers, range selectors and grouping clauses are blanked first; what is left
that looks like a name and is not a function, an aggregation or a keyword is a metric name.
Grafana's variables (``$run_id``, ``$__rate_interval``) only appear inside the blanked parts.
"""

from __future__ import annotations

import re

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
            "offset", "inf", "nan"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"(?<![A-Za-z0-9_.:$])[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects (``rate(x_total{a="b"}[5m]) / y`` -> {x_total, y})."""
    text = _GROUPING.sub(" ", _RANGES.sub(" ", _MATCHERS.sub(" ", _STRING.sub('""', expr))))
    names = set()
    for m in _NAME.finditer(text):
        if text[m.end():].lstrip().startswith("(") or m.group(0).lower() in KEYWORDS:
            continue                              # a function or aggregation, or a keyword
        names.add(m.group(0))
    return names


def grafana_variables(expr: str, values: dict[str, str]) -> str:
    """``expr`` with Grafana's ``$name`` / ``${name}`` variables replaced (longest names first)."""
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    return expr
