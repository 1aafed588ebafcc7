"""Rates, documents, the Prometheus collector and the Flask app, without processes."""

import json
import math
import os
import random

import pytest
from prometheus_client.parser import text_string_to_metric_families

from loggend.engine import counters as C
from loggend.engine.counters import Board, CounterBlock
from loggend.report.sources import Sources
from loggend.web.app import create_app, same_origin
from loggend.web.metrics import HISTORY_SECONDS, QUANTILE_ACCURACY, History, Quantiles, Rates
from loggend.web.state import WebState

TOKEN = "s3cret-token-0123456789"


def test_rates_over_each_window():
    r = Rates()
    for t in range(0, 121):
        r.add(float(t), [1000 * t, 500 * t])          # 1500 ev/s in total
    assert r.rate(1) == r.rate(10) == r.rate(60) == 1500
    assert r.slot_rate(0, 10) == 1000 and r.slot_rate(1, 1) == 500
    assert Rates().rate(10) == 0.0


def test_rates_survive_a_restarted_counter():
    """Worker 1's counter drops to 0 at t=5 (a fresh process without carried counts): no negative rate."""
    r = Rates()
    for t in range(5):
        r.add(float(t), [100 * t, 100 * t])
    for t in range(5, 11):
        r.add(float(t), [100 * t, 100 * (t - 5)])       # restarted from zero, counting again
    assert r.rate(1) == 200
    assert r.slot_rate(1, 1) == 100
    # over 10 s: slot 0 sent 1000; slot 1 sent 400 before the reset and 500 after (the value at t=5 is 0)
    assert r.rate(10) == pytest.approx((1000 + 400 + 500) / 10)


def test_rates_follow_new_slots_and_forget_old_points():
    r = Rates(horizon=30)
    for t in range(100):
        r.add(float(t), [10 * t] + ([5 * (t - 50)] if t >= 50 else []))
    assert len(r.times) == 31 and r.rate(10) == 15


def test_history_peak_and_percentile():
    h = History()
    for i, eps in enumerate([10.0] * 98 + [50.0, 100.0]):
        h.add(float(i), eps)
    assert h.peak == 100 and h.percentile(99) == pytest.approx(50, rel=QUANTILE_ACCURACY)
    assert h.percentile(50) == pytest.approx(10, rel=QUANTILE_ACCURACY)


def test_quantiles_stream_in_bounded_memory():
    """/api/summary once sorted the whole of a rate history that grew forever."""
    rng = random.Random(7)
    values = [rng.lognormvariate(12, 1.5) for _ in range(200_000)] + [0.0] * 1000
    q = Quantiles()
    for v in values:
        q.add(v)
    ordered = sorted(values)
    for p in (0.5, 0.9, 0.99, 0.999):
        exact = ordered[math.ceil(p * len(ordered)) - 1]
        assert q.quantile(p) == pytest.approx(exact, rel=QUANTILE_ACCURACY), p
    assert len(q.buckets) < 3000 and q.count == len(values)
    h = History()
    for t in range(5000):
        h.add(float(t), 10.0)
    assert len(h.points) == HISTORY_SECONDS and h.samples == 5000        # the chart is a window, the figures whole


def test_peak_and_p99_come_from_per_second_rates_only():
    """A 40-worker start once put a first history point of 14,274 ev/s (against 4,000) into the peak: a rate
    over a quarter of a second is charted but not counted."""
    block, board = CounterBlock(1), Board()
    board.publish({"target": "10.0.0.1:514", "rate": 4000.0, "workers": 1, "slots": 1})
    now = [100.0]
    s = WebState(Sources(block, board), interval=0.25, clock=lambda: now[0], wallclock=lambda: 1.7e9 + now[0])
    slot = block.slot(0)
    slot[C.STATE], slot[C.PID] = C.STATE_RUNNING, os.getpid()
    for t, sent in ((100.0, 0), (100.25, 3568), (101.25, 7568), (102.25, 11568), (103.25, 15568)):
        now[0] = t
        slot[C.SENT] = sent
        s.sample()
    assert [p[1] for p in s.history.points][0] == pytest.approx(14272, rel=0.001)    # charted as it was
    assert s.history.peak == pytest.approx(4000, rel=0.001) and s.history.samples == 3
    summary = client(s).get("/api/summary").get_json()
    assert summary["events_per_second"]["peak"] == pytest.approx(4000, rel=0.001)
    assert summary["events_per_second"]["p99"] == pytest.approx(4000, rel=QUANTILE_ACCURACY)


def test_the_sink_says_in_metrics_what_it_could_not_count():
    """/metrics once said nothing of a sink behind, a stream's loss or another receiver on the ports."""
    sinks, streams, board = CounterBlock(2), CounterBlock(2 * C.STREAM_SLOTS_PER_SINK), Board()
    for k in range(2):
        row = sinks.slot(k)
        row[C.SINK_STATE], row[C.SINK_RECEIVED] = C.STATE_RUNNING, 100
    sinks.slot(1)[C.SINK_UNREAD], sinks.slot(1)[C.SINK_BACKLOG_BYTES] = 4321, 1 << 20
    for i in range(C.STREAM_SLOTS_PER_SINK):               # process 0 named 64 streams, process 1 one of them too
        streams.set_name(i, b"s%d" % i)
        streams.slot(i)[C.STREAM_RECEIVED], streams.slot(i)[C.STREAM_GAPS] = 10, i % 2
    streams.set_name(C.STREAM_SLOTS_PER_SINK, b"s3")
    streams.slot(C.STREAM_SLOTS_PER_SINK)[C.STREAM_RECEIVED] = 5
    board.publish({"target": "127.0.0.1:514", "rate": 0, "workers": 0, "slots": 0, "sink_slots": 2, "mode": "sink",
                   "stream_width": C.STREAM_SLOTS_PER_SINK})
    s = WebState(Sources(CounterBlock(1), board, sinks, streams), interval=1.0)
    s.sample()
    families = {f.name: f for f in text_string_to_metric_families(client(s).get("/metrics").get_data(as_text=True))}
    assert families["loggen_sink_loss_known"].samples[0].value == 0
    assert {x.labels["sink"]: x.value for x in families["loggen_sink_unread"].samples
            if x.name.endswith("_total")} == {"0": 0, "1": 4321}
    received = {x.labels["stream"]: x.value for x in families["loggen_sink_stream_received"].samples
                if x.name.endswith("_total")}
    assert len(received) == C.STREAM_SLOTS_PER_SINK and received["s3"] == 15           # both processes' parts
    lost = {x.labels["stream"]: x.value for x in families["loggen_sink_stream_lost"].samples}
    assert lost["s1"] == 1 and lost["s2"] == 0
    frame = client(s).get("/api/metrics").get_json()
    assert frame["mode"] == "sink" and len(frame["streams"]) == C.STREAM_SLOTS_PER_SINK
    assert frame["sink"]["verdict"] == "unknown"
    assert "4,321 datagrams unread at stop" in frame["sink"]["unknown_because"][0]


def test_per_stream_series_are_bounded():
    from loggend.web.metrics import MAX_STREAM_SERIES, SinkCollector
    streams = {f"s{i:05d}": [0] * C.SLOT_FIELDS for i in range(MAX_STREAM_SERIES * 4)}
    families = {f.name: f for f in SinkCollector.collect_streams(streams, ["", ""])}
    assert len(families["loggen_sink_stream_lost"].samples) == MAX_STREAM_SERIES
    assert families["loggen_sink_streams_unlabelled"].samples[0].value == 3 * MAX_STREAM_SERIES


def test_board_round_trip_and_limit():
    b = Board(size=256)
    b.publish({"rate": 5.0, "target": "x"})
    assert b.read() == {"rate": 5.0, "target": "x"}
    with pytest.raises(ValueError):
        b.publish({"big": "x" * 300})
    assert b.read() == {"rate": 5.0, "target": "x"}


@pytest.mark.parametrize("origin,ok", [("", True), ("http://127.0.0.1:8080", True), ("http://evil.example", False),
                                       ("https://grafana.example:3000", True), ("http://127.0.0.1:9999", False)])
def test_same_origin(origin, ok):
    assert same_origin(origin, "127.0.0.1:8080", ("https://grafana.example:3000",)) is ok
    assert same_origin(origin, "127.0.0.1", ("https://grafana.example:3000",), server_port=8080) is ok


@pytest.fixture
def state():
    block = CounterBlock(4)
    for i, (sent, restarts) in enumerate([(1000, 0), (2000, 1), (3000, 0)]):
        slot = block.slot(i)
        slot[C.SENT], slot[C.BYTES], slot[C.CALLS] = sent, sent * 180, sent // 64
        slot[C.ERR_REFUSED], slot[C.ERR_QUEUE_FULL] = i, 2 * i
        slot[C.STATE], slot[C.PID], slot[C.RESTARTS] = C.STATE_RUNNING, os.getpid(), restarts
        slot[C.TRANSPORT] = C.TRANSPORT_CODES["gso"]
        slot[C.HEARTBEAT_NS] = 0
    board = Board()
    board.publish({"target": "10.0.0.1:514-516", "ports": [514, 515, 516], "rate": 6000.0, "workers": 3, "slots": 3,
                   "cpus": [0, 1], "started_unix": 1_700_000_000.0, "memory_bytes": 123, "memory_limit": 456})
    s = WebState(Sources(block, board), interval=1.0, wallclock=lambda: 1_700_000_010.0)
    s.sample()
    return s


def client(state, **kw):
    return create_app(state, **kw).test_client()


def test_metrics_parse_and_agree_with_the_counters(state):
    body = client(state).get("/metrics").get_data(as_text=True)
    families = {f.name: f for f in text_string_to_metric_families(body)}
    sent = {s.labels["worker"]: s.value for s in families["loggen_events_sent"].samples if s.name.endswith("_total")}
    assert sent == {"0": 1000, "1": 2000, "2": 3000}
    errors = {(s.labels["worker"], s.labels["reason"]): s.value
              for s in families["loggen_send_errors"].samples if s.name.endswith("_total")}
    assert errors[("2", "refused")] == 2 and errors[("2", "queue_full")] == 4 and errors[("0", "other")] == 0
    restarts = {s.labels["worker"]: s.value for s in families["loggen_worker_restarts"].samples
                if s.name.endswith("_total")}
    assert restarts == {"0": 0, "1": 1, "2": 0}
    assert {s.labels["worker"]: s.value for s in families["loggen_worker_up"].samples} == {"0": 1, "1": 1, "2": 1}
    assert families["loggen_target_events_per_second"].samples[0].value == 6000
    assert families["loggen_info"].samples[0].labels["transport"] == "gso"
    assert {s.labels["worker"] for s in families["loggen_worker_cpu_seconds"].samples} == {"0", "1", "2"}
    assert all(s.value > 0 for s in families["loggen_worker_resident_memory_bytes"].samples)
    assert body.count("loggen_bytes_sent_total{") == 3


def test_api_metrics_schema(state):
    m = client(state).get("/api/metrics").get_json()
    assert m["target"] == {"address": "10.0.0.1:514-516", "events_per_second": 6000.0, "paused": False}
    assert m["totals"]["events"] == 6000 and m["totals"]["restarts"] == 1
    assert m["totals"]["errors"] == {"refused": 3, "queue_full": 6, "unreachable": 0, "other": 0}
    assert set(m["events_per_second"]) == {"1s", "10s", "60s"} and m["transport"] == "gso"
    assert [w["port"] for w in m["worker_status"]] == [514, 515, 516]
    assert [w["cpu"] for w in m["worker_status"]] == [0, 1, 0]
    assert set(m["worker_status"][0]) >= {"index", "pid", "status", "events", "events_per_second", "cpu_percent",
                                          "cpu_seconds", "rss_bytes", "restarts", "errors"}
    assert set(m["system"]) >= {"cpu_percent", "memory_percent", "memory_used_bytes", "memory_total_bytes",
                                "processes", "loggen_memory_bytes"}
    assert m["system"]["processes"] > 0 and m["sink"] is None


def test_api_summary_schema(state):
    s = client(state).get("/api/summary").get_json()
    assert s["events"] == 6000 and s["duration_seconds"] == 10.0 and s["restarts"] == 1
    assert s["events_per_second"]["mean"] == 600.0 and set(s["events_per_second"]) == {"mean", "peak", "p99"}
    assert s["achievement_percent"] == 10.0 and s["started"] == 1_700_000_000.0


def test_bad_requests_are_json_4xx(state):
    c = client(state)
    for method, path, status in [("get", "/nope", 404), ("post", "/api/metrics", 405), ("delete", "/api/summary", 405),
                                 ("put", "/metrics", 405)]:
        r = getattr(c, method)(path)
        assert r.status_code == status and r.get_json()["status"] == status, path


def test_token_guards_every_endpoint(state):
    c = client(state, token=TOKEN)
    for path in ("/", "/api/metrics", "/api/summary", "/metrics", "/healthz", "/ws", "/app.js"):
        r = c.get(path)
        assert r.status_code == 401 and r.get_json()["error"], path
        assert c.get(path, headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
    assert c.get("/api/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert c.get(f"/?token={TOKEN}").status_code == 200


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer ", "beaRer"])
def test_the_bearer_scheme_is_case_insensitive(state, scheme):
    """`Authorization: bearer TOKEN` was refused (auth schemes are case-insensitive, RFC 9110 11.1)."""
    c = client(state, token=TOKEN)
    assert c.get("/api/metrics", headers={"Authorization": f"{scheme} {TOKEN}"}).status_code == 200
    assert c.get("/api/metrics", headers={"Authorization": f"{scheme} wrong-token-0123"}).status_code == 401
    assert c.get("/api/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401


def test_websocket_refuses_a_foreign_origin(state):
    r = client(state).get("/ws", headers={"Origin": "http://evil.example", "Upgrade": "websocket",
                                          "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                          "Sec-WebSocket-Version": "13"})
    assert r.status_code == 403 and "evil.example" in r.get_json()["error"]


def test_dashboard_is_served_offline(state):
    c = client(state)
    page = c.get("/").get_data(as_text=True)
    assert 'id="eps"' in page and "http" not in page.replace('http-equiv', '')      # no CDN, nothing remote
    assert c.get("/app.js").status_code == 200 and c.get("/style.css").mimetype == "text/css"


def test_every_series_carries_the_fleet_labels():
    """run_id and instance_index on every family (a fleet adds up with sum by (run_id)), the share as target."""
    block = CounterBlock(2)
    for i in range(2):
        slot = block.slot(i)
        slot[C.SENT], slot[C.STATE], slot[C.PID] = 100 * (i + 1), C.STATE_RUNNING, os.getpid()
        slot[C.BLOCKED_NS], slot[C.FORGIVEN] = 1_500_000_000 * i, 7 * i
    sinks = CounterBlock(1)
    sinks.slot(0)[C.SINK_RECEIVED], sinks.slot(0)[C.SINK_STREAMS] = 300, 6
    sinks.slot(0)[C.SINK_STATE] = C.STATE_RUNNING
    board = Board()
    board.publish({"target": "10.0.0.1:514", "rate": 2000.0, "fleet_rate": 6000.0, "workers": 2, "slots": 2,
                   "instance": 2, "instances": 3, "run_id": "soak-7", "sink_slots": 1})
    s = WebState(Sources(block, board, sinks), interval=1.0)
    s.sample()
    families = {f.name: f for f in text_string_to_metric_families(client(s).get("/metrics").get_data(as_text=True))}
    for family in families.values():
        for sample in family.samples:
            assert sample.labels["run_id"] == "soak-7" and sample.labels["instance_index"] == "2", sample
    assert families["loggen_target_events_per_second"].samples[0].value == 2000          # this instance's share
    info = families["loggen_info"].samples[0].labels
    assert info["instances"] == "3" and info["version"]
    blocked = {x.labels["worker"]: x.value for x in families["loggen_send_blocked_seconds"].samples
               if x.name.endswith("_total")}
    assert blocked == {"0": 0.0, "1": 1.5}
    assert [x.value for x in families["loggen_events_forgiven"].samples if x.name.endswith("_total")] == [0, 7]
    assert families["loggen_sink_streams"].samples[0].value == 6
    assert client(s).get("/api/metrics").get_json()["fleet"] == {"run_id": "soak-7", "instance": 2, "instances": 3,
                                                                 "events_per_second": 6000.0}


def test_a_standalone_sink_is_labelled_with_its_run_only():
    sinks = CounterBlock(1)
    sinks.slot(0)[C.SINK_RECEIVED] = 5
    board = Board()
    board.publish({"rate": 0, "workers": 0, "slots": 0, "sink_slots": 1, "run_id": "soak-7"})
    s = WebState(Sources(CounterBlock(1), board, sinks), interval=1.0)
    s.sample()
    body = client(s).get("/metrics").get_data(as_text=True)
    assert 'loggen_sink_received_total{instance_index="",run_id="soak-7",sink="0"} 5.0' in body
    assert "loggen_info" not in body and "loggen_target_events_per_second" not in body     # not a generator


def test_a_process_serving_several_workers_is_shared_not_counted_per_worker():
    """worker_processes: 3 workers in one process and 1 in another; each worker shows its share of
    its process, so the workers add up to the processes (not 3 times the first one)."""
    from loggend.engine.counters import STATE_RUNNING, STATE_STOPPED, SlotSnapshot
    from loggend.web.metrics import ProcFigures, worker_shares

    def slot(pid: int, state: int = STATE_RUNNING) -> SlotSnapshot:
        return SlotSnapshot(sent=1, bytes=1, calls=1, errors=(0, 0, 0, 0), heartbeat_ns=0, pid=pid, state=state,
                            restarts=0, started_ns=1, transport="gso")
    procs = {10: ProcFigures(cpu_seconds=6.0, cpu_percent=30.0, rss_bytes=300), 11: ProcFigures(2.0, 10.0, 100)}
    shares = worker_shares([slot(10), slot(11), slot(10), slot(10), slot(11, STATE_STOPPED)], procs)
    assert shares[4] is None                                          # not running: no figures
    running = [s for s in shares if s is not None]
    assert [s.cpu_seconds for s in running] == [2.0, 2.0, 2.0, 2.0]
    assert sum(s.cpu_seconds for s in running) == 8.0 and sum(s.rss_bytes for s in running) == 400


def test_a_worker_whose_target_refuses_it_now_says_so_and_one_refused_long_ago_does_not():
    block = CounterBlock(3)
    for i, transport in enumerate(("gso", "gso", "tcp")):
        slot = block.slot(i)
        slot[C.STATE], slot[C.PID], slot[C.TRANSPORT] = C.STATE_RUNNING, os.getpid(), C.TRANSPORT_CODES[transport]
        slot[C.ERR_REFUSED] = 500                   # both UDP workers were refused once, before these samples
    block.slot(2)[C.LINK_DOWN] = 1
    board = Board()
    board.publish({"target": "127.0.0.1:514-516", "ports": [514, 515, 516], "rate": 3000.0, "workers": 3, "slots": 3})
    clock = iter(range(100))
    s = WebState(Sources(block, board), interval=1.0, clock=lambda: float(next(clock)), wallclock=lambda: 1.7e9)
    s.sample()
    block.slot(1)[C.ERR_REFUSED] = 900              # worker 1's port refuses it now
    s.sample()
    rows = json.loads(s.latest()[1])["worker_status"]
    assert [(r["status"], r["link"]) for r in rows] == [("running", "ok"), ("running", "refusing"),
                                                       ("running", "disconnected")]
    assert json.loads(s.latest()[1])["running"] == 3        # a refused worker still runs
