"""What a SIEM engineer reading the vendor sources' messages expects of them, over thousands of messages.

Each test renders a few thousand messages of one source at a fixed instant (tests/support/drafts) and
checks one property a real device keeps: an ASA teardown's bytes and duration agree with its reason;
IOS adjacency changes follow OSPF's state machine and a device's clock never goes back as its sequence
numbers go up; a session's start time is its end less its elapsed time; a DNS filter log is about DNS;
a Windows logon's type fits its account and logon process; a Zeek protocol record lies within its
connection.
"""

from __future__ import annotations

import random
import re

from loggend.content import cisco
from loggend.content.model import Source
from tests.support import drafts

COUNT = 4_000
NOW = 1_796_591_045.0                 # a fixed instant: every stamp renders the same in every run


def source(module: object, name: str) -> Source:
    return next(s for s in module.SOURCES if s.name == name)      # type: ignore[attr-defined]


def lines(src: Source, form: str = "native", count: int = COUNT, seed: int = 5) -> list[str]:
    return drafts.lines(src, count, form, seed=seed, now=NOW, utc=True)


def seconds(hms: str) -> int:
    h, m, s = (int(x) for x in hms.split(":"))
    return h * 3600 + m * 60 + s


ASA_TEARDOWN = re.compile(r"%ASA-6-302014: Teardown TCP connection \d+ .* duration (\d+:\d\d:\d\d) bytes (\d+) (.+)$")


def test_an_asa_teardown_reason_fits_its_bytes_and_duration() -> None:
    """SYN Timeout: an embryonic connection, no bytes, closed at the 30 s embryonic timeout; Idle
    Timeout: idle for the hour of 'timeout conn' at least; FINs and resets end sessions that carried data."""
    by_reason: dict[str, list[tuple[int, int]]] = {}
    for line in lines(source(cisco, "cisco-asa")):
        m = ASA_TEARDOWN.search(line)
        if m:
            by_reason.setdefault(m[3], []).append((seconds(m[1]), int(m[2])))
    assert set(by_reason) == {r for r, _ in cisco.TCP_TEARDOWN}, by_reason.keys()
    assert all(size == 0 and duration == cisco.SYN_TIMEOUT for duration, size in by_reason["SYN Timeout"])
    assert all(duration >= cisco.IDLE_TIMEOUT and size > 0 for duration, size in by_reason["Idle Timeout"])
    for reason in ("TCP FINs", "TCP Reset-I", "TCP Reset-O"):
        assert all(size > 0 for _, size in by_reason[reason]), reason
