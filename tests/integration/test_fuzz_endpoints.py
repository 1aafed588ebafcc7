"""Property tests of what loggen reads from other processes over sockets: control-socket requests
to a live run, and the answers of a feedback receiver (a sink's /api/metrics, Prometheus' query
API) served by a private HTTP server on 127.0.0.1. Whatever comes, the answer is a reply or a
one-line error, never a traceback, and the run goes on (``make fuzz`` runs thousands of examples)."""

from __future__ import annotations

import json
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from loggend.control.ctlsocket import request
from loggend.tools.feedback import FeedbackError, PrometheusFeedback, Reading, SinkFeedback
from tests.support.processes import RUN

pytestmark = [pytest.mark.fuzz, pytest.mark.network]

verbs = st.sampled_from(["status", "rate", "profile", "pause", "resume", "scale", "stop", "", "RATE", "rate\t"])
args = st.one_of(st.text(max_size=40), st.sampled_from(["1k", "0", "-1", "1e400", "nan", "ramp:1k-2k/1s",
                                                        "steps:1k-3k+0/1s", "100m", "1k 2k", "\x00"]))


@pytest.fixture(scope="module")
def live_run(tmp_path_factory):
    """One paced run with a control socket for the whole module (a run per example would take hours)."""
    from tests.support.processes import Loggend, LoopbackReceiver
    receiver = LoopbackReceiver()
    sock = str(tmp_path_factory.mktemp("ctl") / "ctl.sock")
    proc = Loggend(*RUN, "--target", f"127.0.0.1:{receiver.port}", "--rate", "500", "--duration", "10m",
                   "--control-socket", sock)
    proc.wait_line("control socket:", stream="err", timeout=60)
    deadline = time.monotonic() + 60
    while request(sock, "status", timeout=10)["status"]["state"] == "starting":    # workers setting up
        assert time.monotonic() < deadline, "the run did not start within 60 s"
        time.sleep(0.1)
    yield proc, sock
    proc.signal(signal.SIGTERM)
    code = proc.wait(30)
    receiver.close()
    assert code == 0


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
          max_examples=60)
@given(verbs, args)
@example("rate", "1e400")
@example("profile", "burst:1k-2k/0s")
@example("rate", "1k\n" + "status")
def test_any_control_request_gets_a_reply_and_the_run_goes_on(live_run, verb, arg):
    proc, sock = live_run
    line = f"{verb} {arg}".replace("\n", " ")
    if not line.strip():
        return                                       # an empty line is closed without an answer
    reply = request(sock, line, timeout=10)
    assert isinstance(reply, dict) and isinstance(reply.get("message"), str)
    assert "internal error" not in reply["message"]
    assert proc.proc.poll() is None
    assert "status" in request(sock, "resume", timeout=10)
    assert request(sock, "rate 500", timeout=10)["ok"]        # back to a gentle rate for the next example


# --- feedback answers ------------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=10)
sink_docs = st.fixed_dictionaries({}, optional={
    "sink": st.one_of(json_values, st.fixed_dictionaries(
        {"received": json_values}, optional={k: json_values for k in ("duplicates", "lost", "unsequenced",
                                                                      "kernel_drops")})),
    "time": json_values})
prom_docs = st.fixed_dictionaries({"status": st.sampled_from(["success", "error", 1])}, optional={
    "data": st.one_of(json_values, st.fixed_dictionaries({
        "resultType": st.sampled_from(["vector", "scalar", "matrix", None]),
        "result": st.one_of(json_values, st.lists(st.fixed_dictionaries(
            {"value": st.one_of(json_values, st.tuples(st.floats(0, 2e9), st.text(max_size=12)).map(list))}),
            max_size=3))})),
    "error": json_values})
bodies = st.one_of(sink_docs.map(json.dumps), prom_docs.map(json.dumps), st.binary(max_size=200),
                   st.just(b"[" * 100_000 + b"]" * 100_000))


class _Answers:
    body: bytes = b"{}"
    status: int = 200


@pytest.fixture(scope="module")
def answering():
    """A private HTTP server on 127.0.0.1 answering every GET with ``_Answers.body``."""
    answers = _Answers()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server name)
            body = answers.body if isinstance(answers.body, bytes) else answers.body.encode()
            self.send_response(answers.status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield answers, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(bodies, st.sampled_from([200, 200, 200, 404, 500]))
@example(json.dumps({"sink": {"received": "1e400"}}), 200)
@example(json.dumps({"status": "success", "data": {"resultType": "vector",
                                                   "result": [{"value": [0, "1e308"]}, {"value": [0, "1e308"]}]}}),
         200)
def test_any_feedback_answer_is_a_reading_or_one_line(answering, body, status):
    answers, url = answering
    answers.body, answers.status = body, status
    for reader in (SinkFeedback(url, f"sink:{url}"), PrometheusFeedback(url, "sum(x)", f"prometheus:{url}")):
        try:
            reading = reader.read()
        except FeedbackError as err:
            assert "\n" not in str(err) and str(err)
            continue
        assert isinstance(reading, Reading) and reading.total >= 0
