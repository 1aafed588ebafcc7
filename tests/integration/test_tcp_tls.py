"""TCP and TLS end to end through real processes on loopback: exact counts in every format and
framing, push-back, a receiver that restarts mid-run, and bad input."""

import json
import re
import signal
import time

import pytest

from loggend.control.pki import make_pki
from loggend.engine.formats import FORMATS
from tests.support.processes import RUN, assert_sent_as_due, run_loggend, start_sink, wait_until
from tests.support.receivers import free_port, openssl_available

pytestmark = pytest.mark.slow

WIRES = [("tcp", "octet-counting", f) for f in FORMATS] + [("tcp", "lf", "rfc5424"), ("tcp", "lf", "json"),
                                                           ("tls", "octet-counting", "cef"),
                                                           ("tls", "octet-counting", "rfc3164")]


def needs_openssl():
    reason = openssl_available()
    if reason:
        pytest.skip(reason)


def summary(path) -> dict:
    return json.loads(path.read_text())


@pytest.mark.parametrize(("protocol", "framing", "fmt"), WIRES)
def test_every_format_and_framing_arrives_exactly_at_a_local_sink(tmp_path, protocol, framing, fmt):
    if protocol == "tls":
        needs_openssl()
    port = free_port(udp=False)
    out = tmp_path / "summary.json"
    result = run_loggend(*RUN, "--workers", "2", "--target", "127.0.0.1", "--ports", f"{port}", "--rate", "20000",
                         "--duration", "1s", "--pool-size", "1000", "--protocol", protocol, "--framing", framing,
                         "--format", fmt, "--local-sink", "--sink-processes", "1", "--summary-json", str(out))
    assert result.returncode == 0, result.stderr
    s = summary(out)
    assert_sent_as_due(s, 20000)
    assert s["transport"] == protocol
    sink = s["sink"]
    counts = (sink["received"], sink["lost"], sink["duplicates"], sink["unsequenced"], sink["torn"])
    assert counts == (20000, 0, 0, 0, 0)
    assert sink["connections"] == 2 and sink["streams"] == 2 and sink["tls_failures"] == 0
    assert [w["received"] for w in s["workers"]] == [10000, 10000]
    assert "push-back   blocked" in result.stdout
    if protocol == "tls":
        assert "the server verified as '127.0.0.1'" in result.stderr       # the throw-away CA is trusted


def sink_figures(text: str) -> dict[str, int]:
    block = text[text.index("sink summary:"):]
    found = {k: int(v.replace(",", "")) for k, v in
             re.findall(r"(received|lost|duplicates|without sequence|torn messages|TLS handshakes failed|"
                        r"not syslog) +([\d,]+)", block)}
    found["connections"] = int(re.search(r"connections ([\d,]+) accepted", block).group(1).replace(",", ""))
    return found


def test_mutual_tls_to_loggend_sink_with_a_named_server(loggend, pki, tmp_path):
    port = free_port(udp=False)
    sink, _ = start_sink(loggend, port, "--protocol", "tls", "--tls-cert", str(pki.server_cert),
                      "--tls-key", str(pki.server_key), "--tls-ca", str(pki.ca_cert), "--duration", "30s")
    tls = ("--protocol", "tls", "--tls-ca", str(pki.ca_cert), "--tls-server-name", "localhost")
    result = run_loggend(*RUN, "--target", f"127.0.0.1:{port}", "--rate", "10000", "--duration", "1s", *tls,
                         "--tls-cert", str(pki.client_cert), "--tls-key", str(pki.client_key), "--format", "leef")
    assert result.returncode == 0, result.stderr
    assert "the server verified as 'localhost'" in result.stderr
    # without a client certificate the sink refuses the handshake: one line naming the cause, exit 1
    refused = run_loggend(*RUN, "--target", f"127.0.0.1:{port}", "--rate", "10000", "--duration", "1s", *tls)
    assert refused.returncode == 1
    assert f"worker 0: cannot start sending to 127.0.0.1:{port}: the TLS handshake failed" in refused.stderr
    assert "Traceback" not in refused.stderr
    sink.signal(signal.SIGTERM)
    assert sink.wait(20) == 0
    f = sink_figures(sink.stdout)
    assert (f["received"], f["lost"], f["torn messages"], f["TLS handshakes failed"]) == (10000, 0, 0, 1)


def test_push_back_is_measured_when_the_receiver_cannot_keep_up(tmp_path):
    port = free_port(udp=False)
    out = tmp_path / "summary.json"
    # a receiver that reads nothing: the kernel queues fill, then every send waits
    import socket
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    server.bind(("127.0.0.1", port))
    server.listen(1)
    try:
        result = run_loggend(*RUN, "--target", f"127.0.0.1:{port}", "--rate", "200000", "--duration", "2s",
                             "--protocol", "tcp", "--summary-json", str(out))
    finally:
        server.close()
    assert result.returncode == 0, result.stderr
    s = summary(out)
    assert s["planned"] == 400000 and s["sent"] < 400000            # what could not go out stays due
    assert s["blocked_seconds"] > 1.0                               # of the 2 s, most spent waiting
    assert re.search(r"push-back   blocked \d+\.\d\d s waiting for the receiver", result.stdout)


def test_a_receiver_that_restarts_mid_run_costs_reconnects_and_no_torn_message(loggend, tmp_path):
    port = free_port(udp=False)
    first, _ = start_sink(loggend, port, "--protocol", "tcp")
    out = tmp_path / "summary.json"
    run = loggend(*RUN, "--target", f"127.0.0.1:{port}", "--rate", "20000", "--duration", "9s", "--protocol", "tcp",
                  "--format", "rfc5424", "--summary-json", str(out))
    run.wait_line("[   2.0s]")
    first.signal(signal.SIGTERM)
    assert first.wait(20) == 0
    run.wait_line("reconnecting", stream="err")
    time.sleep(0.5)                                              # down for a while: reconnects back off
    second, _ = start_sink(loggend, port, "--protocol", "tcp", "--idle-exit", "3s")
    assert run.wait(30) == 0
    assert second.wait(20) == 0
    s = summary(out)
    a, b = sink_figures(first.stdout), sink_figures(second.stdout)
    assert s["reconnects"] >= 1 and "reconnects" in run.stdout
    # the second sink sees the stream resume at a message boundary, in order, nothing torn or doubled
    assert (b["without sequence"], b["lost"], b["duplicates"], b["torn messages"], b["not syslog"]) == (0, 0, 0, 0, 0)
    assert b["received"] > 0 and a["received"] > 0
    # what neither sink got was in flight when the first one went away: at most what was reported
    missing = s["sent"] - a["received"] - b["received"]
    assert 0 <= missing <= s["possibly_lost"] + a["torn messages"] + 64 * 1024 // 150, (missing, s["possibly_lost"])


def test_bad_tls_input_is_one_line_with_its_exit_status(pki, tmp_path):
    port = free_port(udp=False)
    other = make_pki(tmp_path / "other")
    cases = [
        (("--tls-ca", str(tmp_path / "missing.pem")), 2, "--tls-ca: "),
        (("--tls-cert", str(pki.client_cert), "--tls-key", str(other.client_key)), 2, "a key that matches"),
        ((), 1, "cannot connect: Connection refused (nothing listening on that port?)"),
    ]
    for flags, code, needle in cases:
        r = run_loggend(*RUN, "--target", f"127.0.0.1:{port}", "--protocol", "tls", "--duration", "1s", *flags)
        assert r.returncode == code, (flags, r.stderr)
        assert needle in r.stderr and "Traceback" not in r.stderr
    bad_sink = run_loggend("sink", "--protocol", "tls", "--tls-cert", str(pki.server_cert),
                           "--tls-key", str(other.server_key), "--listen", f"127.0.0.1:{port}")
    assert bad_sink.returncode == 2 and bad_sink.stderr.count("\n") == 1 and "--tls-key" in bad_sink.stderr


def test_a_plain_tcp_server_answering_a_tls_client_is_named(loggend, pki):
    port = free_port(udp=False)
    sink, _ = start_sink(loggend, port, "--protocol", "tcp", "--duration", "60s")   # stopped below
    r = run_loggend(*RUN, "--target", f"127.0.0.1:{port}", "--protocol", "tls", "--tls-ca", str(pki.ca_cert),
                    "--duration", "1s")
    assert r.returncode == 1 and "the TLS handshake failed" in r.stderr and "Traceback" not in r.stderr
    wait_until(lambda: "sent a TLS handshake to a TCP port; closed" in sink.stderr, what="the sink's line about it")
    sink.signal(signal.SIGTERM)
    assert sink.wait(20) == 0
    f = sink_figures(sink.stdout)
    assert (f["received"], f["not syslog"]) == (0, 1)
