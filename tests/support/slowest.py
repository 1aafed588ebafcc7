"""The slowest tests of one or more pytest --junitxml reports: ``python -m tests.support.slowest N FILE...``.

``make test`` runs the suite in three passes (parallel, serial, alone) and prints one list of all with this."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET


def slowest(paths: list[str], count: int) -> list[tuple[float, str]]:
    """(seconds, test id) of the ``count`` longest test cases (set-up, call and tear-down together)."""
    cases = []
    for path in paths:
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError):
            continue                                      # a pass that did not run has no report
        for case in root.iter("testcase"):
            name = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
            cases.append((float(case.get("time") or 0.0), name))
    return sorted(cases, reverse=True)[:count]


def main(argv: list[str]) -> int:
    count, paths = int(argv[0]), argv[1:]
    rows = slowest(paths, count)
    print(f"===== the {len(rows)} slowest tests (set-up + call + tear-down, all passes) =====")
    for seconds, name in rows:
        print(f"{seconds:8.2f}s {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
