"""Rate profiles as people write them: the config's ``profile:`` list and the compact ``--profile``.

A profile is a list of segments run in order, then held at the last rate (or repeated):

========  =======================================  ======================================
kind      config (a YAML list item)                compact (``--profile``, comma-separated)
========  =======================================  ======================================
constant  ``{constant: {rate: 200k, for: 5m}}``    ``constant:200k/5m``
ramp      ``{ramp: {from: 10k, to: 200k, for: 1m}}``  ``ramp:10k-200k/1m``
steps     ``{steps: {from: 10k, to: 100k, step: 10k, each: 30s}}``  ``steps:10k-100k+10k/30s``
burst     ``{burst: {base: 20k, peak: 200k, peak_for: 5s, every: 1m, for: 10m}}``
                                                   ``burst:20k-200k/5s/1m/10m``
sine      ``{sine: {min: 10k, max: 100k, period: 10m, for: 1h}}``  ``sine:10k-100k/10m/1h``
========  =======================================  ======================================

The last item may be ``repeat`` (the list runs again from the start, for ever) or ``hold`` (the
default: the last rate goes on). ``for`` may be left out of ``constant``, ``burst`` and ``sine``
in the last segment only: it then lasts for ever. Rates are written as everywhere (``250k``,
``4M``; 0 or at least 1 ev/s), but inside a profile 0 means no events (a pause), not unlimited. A segment may also be
written in its compact form inside the YAML list (``- ramp:10k-200k/1m``). Every mistake is one
line naming the key or flag and the segment.

``format_profile`` writes any profile back in the compact syntax (the summary, the logs, ``ctl``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from loggend.engine.schedule import Burst, Constant, Profile, Ramp, Segment, Sine, Steps
from loggend.errors import ConfigError
from loggend.parsers import MAX_RATE, MIN_RATE, parse_duration, parse_rate

MAX_SEGMENTS = 1000
MAX_STEPS = 100_000
ENDINGS = ("hold", "repeat")
SYNTAX = {
    "constant": ("constant:RATE[/FOR]", "constant:200k/5m"),
    "ramp": ("ramp:FROM-TO/FOR", "ramp:10k-200k/60s"),
    "steps": ("steps:FROM-TO+STEP/EACH", "steps:10k-100k+10k/30s"),
    "burst": ("burst:BASE-PEAK/PEAK_FOR/EVERY[/FOR]", "burst:20k-200k/5s/1m/10m"),
    "sine": ("sine:MIN-MAX/PERIOD[/FOR]", "sine:10k-100k/10m/1h"),
}
# The fields of each kind in the config syntax: (name, "rate" | "duration", required).
FIELDS: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "constant": (("rate", "rate", True), ("for", "duration", False)),
    "ramp": (("from", "rate", True), ("to", "rate", True), ("for", "duration", True)),
    "steps": (("from", "rate", True), ("to", "rate", True), ("step", "rate", True), ("each", "duration", True)),
    "burst": (("base", "rate", True), ("peak", "rate", True), ("peak_for", "duration", True),
              ("every", "duration", True), ("for", "duration", False)),
    "sine": (("min", "rate", True), ("max", "rate", True), ("period", "duration", True),
             ("for", "duration", False)),
}
_COMPACT = {
    "constant": re.compile(r"(?P<rate>[^/]+)(?:/(?P<for>[^/]+))?"),
    "ramp": re.compile(r"(?P<from>[^-/]+)-(?P<to>[^/]+)/(?P<for>[^/]+)"),
    "steps": re.compile(r"(?P<from>[^-/]+)-(?P<to>[^+/]+)\+(?P<step>[^/]+)/(?P<each>[^/]+)"),
    "burst": re.compile(r"(?P<base>[^-/]+)-(?P<peak>[^/]+)/(?P<peak_for>[^/]+)/(?P<every>[^/]+)(?:/(?P<for>[^/]+))?"),
    "sine": re.compile(r"(?P<min>[^-/]+)-(?P<max>[^/]+)/(?P<period>[^/]+)(?:/(?P<for>[^/]+))?"),
}


def kinds_text() -> str:
    return "; ".join(f"{form} (e.g. {example})" for form, example in SYNTAX.values())


class _Segment:
    """One segment being read: its values by field name, and how to complain about them."""

    def __init__(self, key: str, kind: str, text: str, values: dict[str, object]) -> None:
        self.key, self.kind, self.text, self.values = key, kind, text, values

    def fail(self, why: str) -> ConfigError:
        return ConfigError(self.key, self.text, why)

    def rate(self, name: str) -> float:
        try:
            return parse_rate(name, self.values[name])  # type: ignore[arg-type]
        except ConfigError:
            raise self.fail(f"{name} in events per second: 0 (none), or from {MIN_RATE:g} to {MAX_RATE:.0e}, "
                            "e.g. 250k") from None

    def seconds(self, name: str) -> float:
        text = self.values.get(name)
        if text is None:
            return math.inf
        try:
            value = parse_duration(name, text)  # type: ignore[arg-type]
        except ConfigError:
            value = 0.0
        if not value > 0:
            raise self.fail(f"{name} as a duration longer than 0 s, e.g. 30s, 5m or 1h")
        return value

    def build(self) -> Segment:
        kind, r, s = self.kind, self.rate, self.seconds
        unknown = set(self.values) - {name for name, _, _ in FIELDS[kind]}
        missing = [name for name, _, required in FIELDS[kind] if required and self.values.get(name) is None]
        if unknown or missing:
            names = ", ".join(name for name, _, _ in FIELDS[kind])
            raise self.fail(f"a {kind} segment with {names} ({SYNTAX[kind][0]})")
        if kind == "constant":
            return Constant(r("rate"), s("for"))
        if kind == "ramp":
            return Ramp(r("from"), r("to"), s("for"))
        if kind == "steps":
            start, stop, step = r("from"), r("to"), r("step")
            if not step > 0 or abs(stop - start) / step >= MAX_STEPS:
                raise self.fail(f"a step above 0 and at most {MAX_STEPS:,} steps")
            return Steps(start, stop, step, s("each"))
        if kind == "burst":
            peak_for, every = s("peak_for"), s("every")
            if not peak_for < every < math.inf:
                raise self.fail("peak_for shorter than every")
            return Burst(r("base"), r("peak"), peak_for, every, s("for"))
        low, high = r("min"), r("max")
        if low > high:
            raise self.fail("min <= max")
        return Sine(low, high, s("period"), s("for"))


def _compact(key: str, text: str) -> _Segment:
    kind, sep, rest = text.strip().partition(":")
    if not sep or kind not in _COMPACT:
        raise ConfigError(key, text, f"segments such as {kinds_text()}; then repeat or hold")
    m = _COMPACT[kind].fullmatch(rest.strip())
    if not m:
        raise ConfigError(key, text, f"{SYNTAX[kind][0]}, e.g. {SYNTAX[kind][1]}")
    return _Segment(key, kind, text, {k: v.strip() for k, v in m.groupdict().items() if v is not None})


def _item(key: str, item: object) -> _Segment:
    """A YAML list item: ``{ramp: {from: 10k, to: 200k, for: 60s}}`` or a compact string."""
    if isinstance(item, str):
        return _compact(key, item)
    if isinstance(item, dict) and len(item) == 1:
        ((kind, values),) = item.items()
        if kind in FIELDS and isinstance(values, dict):
            return _Segment(key, str(kind), f"{{{kind}: {values}}}", {str(k): v for k, v in values.items()})
    raise ConfigError(key, item, f"segments such as {{ramp: {{from: 10k, to: 200k, for: 60s}}}} "
                                 f"or their compact form: {kinds_text()}; then repeat or hold")


def parse_profile(key: str, value: object) -> Profile | None:
    """A profile from the config (a YAML list or a compact string) or a flag; None when empty."""
    if isinstance(value, str) and not value.strip() and key.startswith("--"):
        raise ConfigError(key, value, "a profile such as " + SYNTAX["ramp"][1] + " (an empty one is none)")
    if value is None or value == [] or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        items: list[Any] = [p for p in value.split(",") if p.strip()]
    elif isinstance(value, list):
        items = list(value)
    else:
        raise ConfigError(key, value, "a list of segments, or the compact form " + SYNTAX["ramp"][1])
    ending = "hold"
    if items and isinstance(items[-1], str) and items[-1].strip() in ENDINGS:
        ending = items.pop().strip()
    if not items or len(items) > MAX_SEGMENTS:
        raise ConfigError(key, value, f"1 to {MAX_SEGMENTS} segments, then repeat or hold")
    segments = [_item(f"{key} (segment {i + 1})", item).build() for i, item in enumerate(items)]
    if any(math.isinf(s.seconds) for s in segments[:-1]):
        raise ConfigError(key, value, "'for' in every segment but the last (which may last for ever)")
    if ending == "repeat" and math.isinf(segments[-1].seconds):
        raise ConfigError(key, value, "'for' in every segment of a profile that repeats")
    return Profile(tuple(segments), repeat=ending == "repeat")


# --- writing them back ----------------------------------------------------------------------------

def format_rate(rate: float) -> str:
    """250000 -> ``250k``, 4e6 -> ``4M``, 1500 -> ``1.5k``; anything else as a plain number."""
    if math.isinf(rate):
        return "unlimited"
    for suffix, unit in (("M", 1e6), ("k", 1e3)):
        scaled = rate / unit
        if rate >= unit and abs(scaled - round(scaled, 3)) < 1e-9:
            return f"{round(scaled, 3):.10g}{suffix}"
    return f"{rate:.10g}"


def format_seconds(seconds: float) -> str:
    """3600 -> ``1h``, 90 -> ``90s``, 300 -> ``5m``, 0.25 -> ``0.25s``."""
    for suffix, unit in (("h", 3600), ("m", 60)):
        if seconds >= unit and seconds % unit == 0:
            return f"{int(seconds // unit)}{suffix}"      # never 1e+06h: what is written must parse back
    return f"{int(seconds)}s" if seconds == int(seconds) else f"{seconds:.10g}s"


def _with_for(text: str, seconds: float) -> str:
    return text if math.isinf(seconds) else f"{text}/{format_seconds(seconds)}"


FORMATTERS: dict[type[Segment], Callable[[Any], str]] = {
    Constant: lambda s: _with_for(f"constant:{format_rate(s.rate)}", s.seconds),
    Ramp: lambda s: f"ramp:{format_rate(s.start)}-{format_rate(s.stop)}/{format_seconds(s.seconds)}",
    Steps: lambda s: (f"steps:{format_rate(s.start)}-{format_rate(s.stop)}+{format_rate(s.step)}/"
                      f"{format_seconds(s.each)}"),
    Burst: lambda s: _with_for(f"burst:{format_rate(s.base)}-{format_rate(s.peak)}/{format_seconds(s.peak_for)}/"
                               f"{format_seconds(s.every)}", s.seconds),
    Sine: lambda s: _with_for(f"sine:{format_rate(s.low)}-{format_rate(s.high)}/{format_seconds(s.period)}",
                              s.seconds),
}


def format_profile(profile: Profile) -> str:
    """The compact form, which ``parse_profile`` reads back to the same profile."""
    text = ",".join(FORMATTERS[type(s)](s) for s in profile.segments)
    return text + ",repeat" if profile.repeat else text
