"""``loggend scenarios``: every attack scenario with its keys and a sample; ``scenarios show SPEC``: one instance.

The sample is the scenario's first message as the injector would send it now (the stream ``SHOW_STREAM``,
sequence numbers from 0) against the catalogue's background of seed 1; ``show`` prints every
message of one instance, each after its offset in seconds from the instance's start.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from loggend.content import scenarios
from loggend.content.scenarios import Background, Scenario, instance, message, parse

SHOW_STREAM = "scn"
SAMPLE_CHARS = 300              # the listing cuts a sample to this many characters


def _sample(scenario: Scenario, background: Background, now: float) -> str:
    inst = instance(parse("scenarios", scenario.name), background, 1)
    text = message(inst.steps[0], now, False, SHOW_STREAM, 0).decode("utf-8", "replace").replace("\t", " ")
    return text if len(text) <= SAMPLE_CHARS else text[:SAMPLE_CHARS] + "..."


def _default(value: object) -> str:
    if value is None:
        return "from the background"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return f"{value:g}" if isinstance(value, float) else f"{value:,}"
    return value if isinstance(value, str) and value else "none"


def describe(scenario: Scenario, background: Background, now: float) -> list[str]:
    lines = [f"{scenario.name}: {scenario.summary}", f"  sends    {scenario.sends}", "  keys"]
    for key in scenario.all_keys():
        default = _default(key.default)
        lines.append(f"    {key.name:<12} {key.doc}; {key.allowed()}; default {default}")
    lines.append(f"  sample   {_sample(scenario, background, now)}")
    return lines


def listing(background: Background | None = None, now: float | None = None) -> str:
    bg = background or Background()
    at = time.time() if now is None else now
    out: list[str] = []
    for scenario in scenarios.SCENARIOS.values():
        out += describe(scenario, bg, at)
        out.append("")
    out.append(f"{len(scenarios.SCENARIOS)} scenarios; ask for one with --scenario NAME[:KEY=VALUE,...]; "
               "`loggend scenarios show NAME[:KEY=VALUE,...]` prints all its messages")
    return "\n".join(out)


def show(spec: str, background: Background | None = None, now: float | None = None,
         out: TextIO | None = None) -> int:
    stream = out if out is not None else sys.stdout
    inst = instance(parse("scenarios show", spec), background or Background(), 1)
    at = time.time() if now is None else now
    stream.write(f"# {inst.id}: source {inst.source}, target {inst.target}, {len(inst.steps)} messages\n")
    for seq, step in enumerate(inst.steps):
        text = message(step, at + step.offset, False, SHOW_STREAM, seq).decode("utf-8", "replace")
        stream.write(f"+{step.offset:.1f}s {step.source}: {text}\n")
    stream.flush()
    return 0
