"""Reading loggend's console output, for the tests that check what a person sees (the live line, the
sink's summary block); a test that checks a figure reads it from --summary-json instead."""

from __future__ import annotations

import re
from collections.abc import Iterable


def live_lines(output: str | Iterable[str]) -> list[str]:
    """The live lines ("[time] N ev/s ...") of a command's output (its text or its lines)."""
    lines = output.splitlines() if isinstance(output, str) else output
    return [line for line in lines if line.startswith("[") and "ev/s" in line]


def eps_of(line: str) -> float:
    """The rate a live line shows."""
    return float(line.split("]", 1)[1].split("ev/s")[0].replace(",", ""))


def sent_of(line: str) -> int:
    """The sent count a live line shows."""
    return int(line.split(" sent ", 1)[1].split()[0].replace(",", ""))


def largest_gap(times: list[float], start: float, end: float) -> float:
    """The longest time between two arrivals inside [start, end] (the whole span when none arrived)."""
    inside = [t for t in times if start <= t <= end]
    return max((b - a for a, b in zip(inside, inside[1:])), default=end - start)


def summary_counts(text: str) -> dict[str, int]:
    """The figures of the sink's console summary block."""
    block = text[text.index("sink summary:"):]
    counts = {k: int(v.replace(",", "")) for k, v in re.findall(r"(received|streams from) +([\d,]+)", block)}
    counts = {"datagrams": counts["received"], "streams": int(re.search(r"from (\d+) streams", block).group(1))}
    counts |= {k: int(v.replace(",", "")) for k, v in re.findall(r"(lost|gaps|late \(reordered\)|duplicates|"
                                                              r"without sequence|kernel drops) +([\d,]+)", block)}
    counts["reordered"] = counts.pop("late (reordered)")
    unknown = re.search(r"lost +unknown \(.*\); by sequence ([\d,]+) so far", block)
    if unknown:                                    # the number it cannot vouch for, for the tests that craft it
        counts["lost"] = int(unknown.group(1).replace(",", ""))
    return counts
