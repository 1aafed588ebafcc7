"""tests/support/sngparse.py runs the unpacked syslog-ng's scl parsers over a list of lines, privately.

The harness itself is checked here: accepted lines come back with the parser's fields and the
OK flag set, a line the parser refuses comes back flagged "0" (never lost, never reordered), and
the source flags decide what the parser sees (raw line, or RFC 5424 with its structured data).
"""

import pytest

from tests.support import sngparse

REASON = sngparse.unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

IOS_LINE = "<189>41: core-sw1: Dec  6 21:04:05.123: %SYS-5-CONFIG_I: Configured from console by admin on vty0"
NOT_CISCO = "<13>Dec  6 21:04:05 host app: no percent sign here"
RFC5424 = '<14>1 2026-12-06T21:04:05Z fw1 RT_FLOW - RT_FLOW_SESSION_CLOSE [junos@2636.1.1.1.2.129 reason="TCP FIN"] x'


def test_raw_lines_keep_order_and_flag_refusals() -> None:
    rows = sngparse.parse([IOS_LINE, NOT_CISCO, IOS_LINE.replace("41:", "42:")], "cisco-parser()")
    assert [r[sngparse.OK_KEY] for r in rows] == ["1", "0", "1"]
    first = rows[0]
    assert (first[".cisco.facility"], first[".cisco.severity"], first[".cisco.mnemonic"]) == ("SYS", "5", "CONFIG_I")
    assert first["HOST"] == "core-sw1"
    assert rows[1]["MESSAGE"] == NOT_CISCO
    assert sngparse.recognised(rows) == pytest.approx(2 / 3)


def test_rfc5424_flags_give_the_parser_structured_data() -> None:
    rows = sngparse.parse([RFC5424], "app-parser(topic(syslog))", flags="syslog-protocol")
    assert rows[0][".SDATA.junos@2636.1.1.1.2.129.reason"] == "TCP FIN"
    assert rows[0][".app.name"] == "junos"
    assert rows[0]["PROGRAM"] == "RT_FLOW"


def test_a_newline_inside_a_message_is_refused() -> None:
    with pytest.raises(ValueError, match="message 1"):
        sngparse.parse(["a", "b\nc"], None)
