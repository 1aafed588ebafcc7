"""Run a real, private Prometheus for tests (stdlib only).

    reason = available()                 # None when prometheus + promtool are usable, else why not
    with Prometheus({"loggen": ["127.0.0.1:40001", "127.0.0.1:40002"]},
                    rules=RULES_YAML) as prom:
        prom.wait_for_targets()          # every static target scraped once and "up"
        v = prom.wait_for_value("loggen:fleet_events:rate5s", timeout=20)

Each instance gets its own temp dir (config, rules, TSDB, log), listens on 127.0.0.1:<free port>,
runs in its own process group (start_new_session=True) and is stopped by that group's id only.
The config is written as JSON, which is valid YAML for Prometheus and promtool.

`python3 prom.py demo` serves three fake /metrics endpoints, runs Prometheus against them and
checks the recorded fleet rate against the known one; `python3 prom.py bench` times variants.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROMETHEUS = os.environ.get("PROMETHEUS", "prometheus")
PROMTOOL = os.environ.get("PROMTOOL", "promtool")
INSTALL_HINT = ("apt-get install -y --no-install-recommends prometheus "
                "(Debian bookworm: 2.42.0+ds)")


def available() -> str | None:
    """None when both binaries run; otherwise a reason suitable for pytest.skip()."""
    for name in (PROMETHEUS, PROMTOOL):
        path = shutil.which(name)
        if path is None:
            return f"{name} not found on PATH; {INSTALL_HINT}"
        try:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{path} --version failed: {exc}"
        if out.returncode != 0:
            return f"{path} --version exited {out.returncode}: {out.stderr.strip()[:200]}"
    return None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def promtool(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run promtool (e.g. promtool("check", "rules", path)); never raises on a non-zero exit."""
    return subprocess.run([shutil.which(PROMTOOL) or PROMTOOL, *args],
                          capture_output=True, text=True, timeout=timeout)


class PrometheusError(RuntimeError):
    pass


class Prometheus:
    """One private Prometheus server.

    jobs: {job_name: [host:port, ...]} (static targets, scheme http, path /metrics), or
          {job_name: {"targets": [...], "labels": {...}}}.
    rules: text of one rule file (YAML), or None.
    """

    # Flags that matter for a short-lived test instance (all exist in 2.42):
    #   --storage.tsdb.retention.time=1h   nothing is kept anyway, the dir is deleted after
    #   --no-storage.tsdb.wal-compression  hidden flag; saves a little CPU (no measurable start-up gain)
    #   --web.enable-lifecycle             allows POST /-/quit; stop() uses SIGTERM anyway
    #   --query.lookback-delta             kept at default 5m; lower it only if a test needs staleness
    #   --log.level=warn                   less log noise (the log stays in the temp dir)
    DEFAULT_FLAGS: tuple[str, ...] = (
        "--storage.tsdb.retention.time=1h",
        "--no-storage.tsdb.wal-compression",
        "--web.enable-lifecycle",
        "--log.level=info",
    )

    def __init__(self, jobs: Mapping[str, Any], rules: str | None = None, *,
                 scrape_interval: str = "1s", evaluation_interval: str = "1s",
                 scrape_timeout: str | None = None, extra_flags: Sequence[str] = (),
                 base_flags: Sequence[str] | None = None,
                 binary: str | None = None, keep_dir: bool = False) -> None:
        self.binary = binary or shutil.which(PROMETHEUS) or PROMETHEUS
        self.jobs = jobs
        self.rules = rules
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.scrape_timeout = scrape_timeout or scrape_interval
        self.extra_flags = tuple(extra_flags)
        # kingpin refuses a bool flag given twice ("cannot be repeated"): to flip one of
        # DEFAULT_FLAGS, pass base_flags instead of adding to extra_flags.
        self.base_flags = self.DEFAULT_FLAGS if base_flags is None else tuple(base_flags)
        self.keep_dir = keep_dir
        self.dir: str | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self.started_at: float | None = None   # time.monotonic() just before exec
        self.ready_at: float | None = None     # time.monotonic() when /-/ready first said 200

    # ---- files -----------------------------------------------------------------------------
    @property
    def config_path(self) -> str:
        assert self.dir
        return os.path.join(self.dir, "prometheus.yml")

    @property
    def rules_path(self) -> str:
        assert self.dir
        return os.path.join(self.dir, "rules.yml")

    @property
    def log_path(self) -> str:
        assert self.dir
        return os.path.join(self.dir, "prometheus.log")

    def config(self) -> dict[str, Any]:
        scrape_configs = []
        for name, spec in self.jobs.items():
            static: dict[str, Any]
            if isinstance(spec, Mapping):
                static = {"targets": list(spec["targets"])}
                if spec.get("labels"):
                    static["labels"] = dict(spec["labels"])
            else:
                static = {"targets": list(spec)}
            scrape_configs.append({"job_name": name, "static_configs": [static]})
        cfg: dict[str, Any] = {
            "global": {"scrape_interval": self.scrape_interval,
                       "scrape_timeout": self.scrape_timeout,
                       "evaluation_interval": self.evaluation_interval},
            "scrape_configs": scrape_configs,
        }
        if self.rules is not None:
            cfg["rule_files"] = [self.rules_path]
        return cfg

    def write_files(self) -> None:
        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix="loggen-prom-")
        with open(self.config_path, "w") as f:
            json.dump(self.config(), f, indent=2)
        if self.rules is not None:
            with open(self.rules_path, "w") as f:
                f.write(self.rules)

    def check(self) -> None:
        """promtool check config (which also checks the rule files it names)."""
        self.write_files()
        out = promtool("check", "config", self.config_path)
        if out.returncode != 0:
            raise PrometheusError(f"promtool check config failed:\n{out.stdout}{out.stderr}")

    # ---- process ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0, attempts: int = 3) -> Prometheus:
        self.write_files()
        assert self.dir
        last = ""
        for _ in range(attempts):  # a free port may be taken between probe and bind: retry
            self.port = free_port()
            argv = [self.binary,
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    *self.base_flags, *self.extra_flags]
            log = open(self.log_path, "ab")
            self.started_at = time.monotonic()
            try:
                self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT, cwd=self.dir,
                                             start_new_session=True)
            finally:
                log.close()
            try:
                self._wait_ready(timeout)
                return self
            except PrometheusError as exc:
                last = str(exc)
                self._kill()
                if "address already in use" not in last:
                    break
        self.cleanup()
        raise PrometheusError(last)

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise PrometheusError(f"prometheus exited {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:
                    if r.status == 200:
                        self.ready_at = time.monotonic()
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        raise PrometheusError(f"prometheus not ready after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def _kill(self, grace: float = 10.0) -> None:
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        pgid = p.pid  # start_new_session: the pid is the group id of the group we created
        try:
            os.killpg(pgid, signal.SIGTERM)
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            p.wait(timeout=5)
        except ProcessLookupError:
            pass

    def cleanup(self) -> None:
        if self.dir and not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def stop(self) -> None:
        self._kill()
        self.cleanup()

    def __enter__(self) -> Prometheus:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- API -------------------------------------------------------------------------------
    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                doc = json.load(r)
        except urllib.error.HTTPError as exc:   # 400/422 carry a JSON error document
            doc = json.load(exc)
        if doc.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {doc.get('errorType')}: {doc.get('error')}")
        return doc["data"]

    def query(self, expr: str) -> list[tuple[dict[str, str], float]]:
        """Instant query: [(labels, value), ...] (vector) or [({}, value)] (scalar)."""
        data = self.api("query", query=expr)
        if data["resultType"] == "vector":
            return [(s["metric"], float(s["value"][1])) for s in data["result"]]
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        raise PrometheusError(f"unexpected resultType {data['resultType']}")

    def value(self, expr: str) -> float | None:
        """The single value of expr, None when empty; error if more than one series."""
        res = self.query(expr)
        if not res:
            return None
        if len(res) > 1:
            raise PrometheusError(f"{expr}: {len(res)} series, expected one")
        return res[0][1]

    def wait_for_value(self, expr: str, predicate: Callable[[float], bool] = lambda v: True,
                       timeout: float = 30.0, poll: float = 0.1) -> float:
        deadline = time.monotonic() + timeout
        last: float | None = None
        while time.monotonic() < deadline:
            last = self.value(expr)
            if last is not None and predicate(last):
                return last
            time.sleep(poll)
        raise PrometheusError(f"{expr}: last value {last} after {timeout}s")

    def targets(self) -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = self.api("targets", state="active")["activeTargets"]
        return active

    def wait_for_targets(self, timeout: float = 15.0) -> list[dict[str, Any]]:
        want = sum(len(s["targets"] if isinstance(s, Mapping) else s) for s in self.jobs.values())
        deadline = time.monotonic() + timeout
        ts: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            ts = self.targets()
            if len(ts) == want and all(t["health"] == "up" for t in ts):
                return ts
            time.sleep(0.1)
        raise PrometheusError(f"targets not all up after {timeout}s: "
                              f"{[(t['scrapeUrl'], t['health'], t['lastError']) for t in ts]}")

    def rule_groups(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self.api("rules")["groups"]
        return groups


# ---- fake /metrics endpoints -----------------------------------------------------------------
class FakeExporter:
    """A /metrics endpoint on 127.0.0.1 whose counter grows at exactly `rate` per second
    (computed from the wall clock at each scrape, so the series is perfectly linear)."""

    def __init__(self, index: int, rate: float, run_id: str = "demo") -> None:
        self.index, self.rate, self.run_id = index, rate, run_id
        self.t0 = time.time()
        self.scrapes = 0
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = exporter.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                exporter.scrapes += 1

            def log_message(self, *a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def render(self) -> str:
        v = self.rate * (time.time() - self.t0)
        lbl = f'instance_index="{self.index}",run_id="{self.run_id}"'
        return ("# HELP loggen_events_sent_total Events sent.\n"
                "# TYPE loggen_events_sent_total counter\n"
                f"loggen_events_sent_total{{{lbl}}} {v:.3f}\n"
                "# HELP loggen_worker_up 1 when the worker is running.\n"
                "# TYPE loggen_worker_up gauge\n"
                f"loggen_worker_up{{{lbl}}} 1\n")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def rules_yaml(windows: Iterable[str] = ("10s",)) -> str:
    lines = ["groups:", "  - name: loggen-fleet", "    rules:"]
    for w in windows:
        lines += [f"      - record: loggen:fleet_events:rate{w}",
                  f"        expr: sum by (run_id) (rate(loggen_events_sent_total[{w}]))"]
    lines += ["      - record: loggen:fleet_events:irate",
              "        expr: sum by (run_id) (irate(loggen_events_sent_total[5s]))",
              "      - record: loggen:fleet_workers_up:sum",
              "        expr: sum by (run_id) (loggen_worker_up)",
              "      - alert: LoggenWorkerDown",
              "        expr: loggen_worker_up == 0",
              "        for: 5s",
              "        labels: {severity: warning}",
              "        annotations: {summary: 'worker {{ $labels.instance_index }} is down'}"]
    return "\n".join(lines) + "\n"


RATES = (1000.0, 2000.0, 3000.0)  # per endpoint; fleet = 6000/s


def run_once(windows: Sequence[str], scrape: str = "1s", evaluation: str = "1s",
             extra_flags: Sequence[str] = (), base_flags: Sequence[str] | None = None,
             tolerance: float = 0.02, timeout: float = 60,
             verbose: bool = True) -> dict[str, Any]:
    exporters = [FakeExporter(i, r, run_id="demo") for i, r in enumerate(RATES)]
    want = sum(RATES)
    times: dict[str, Any] = {}
    prom = Prometheus({"loggen": [e.target for e in exporters]}, rules_yaml(windows),
                      scrape_interval=scrape, evaluation_interval=evaluation, extra_flags=extra_flags,
                      base_flags=base_flags)
    try:
        prom.check()
        t0 = time.monotonic()
        prom.start()
        assert prom.ready_at and prom.started_at
        times["ready"] = prom.ready_at - prom.started_at
        prom.wait_for_targets()
        times["targets_up"] = time.monotonic() - t0
        names = [f"loggen:fleet_events:rate{w}" for w in windows] + ["loggen:fleet_events:irate"]
        first: dict[str, float] = {}
        accurate: dict[str, float] = {}
        values: dict[str, float] = {}
        deadline = time.monotonic() + timeout
        while len(accurate) < len(names) and time.monotonic() < deadline:
            for n in names:
                if n in accurate:
                    continue
                v = prom.value(f'{n}{{run_id="demo"}}')
                now = time.monotonic() - t0
                if v is not None and n not in first:
                    first[n] = now
                    values[n + " first"] = v
                if v is not None and abs(v - want) <= tolerance * want:
                    accurate[n] = now
                    values[n] = v
            time.sleep(0.05)
        times["first_value"] = first
        times["within_tolerance"] = accurate
        times["values"] = values
        up = prom.value('loggen:fleet_workers_up:sum{run_id="demo"}')
        times["workers_up"] = up
        times["ok"] = len(accurate) == len(names)
        if verbose:
            print(json.dumps(times, indent=1, sort_keys=True))
        return times
    finally:
        prom.stop()
        for e in exporters:
            e.close()


def demo() -> int:
    reason = available()
    if reason:
        print("SKIP:", reason)
        return 0
    print(subprocess.run([PROMETHEUS, "--version"], capture_output=True, text=True).stdout.splitlines()[0])
    r = run_once(("10s",))
    want = sum(RATES)
    v = r["values"].get("loggen:fleet_events:rate10s")
    ok = v is not None and abs(v - want) <= 0.02 * want
    print(f"fleet rate10s = {v} (want {want} ±2%): {'PASS' if ok else 'FAIL'}; "
          f"ready {r['ready']:.2f}s, first value {r['first_value'].get('loggen:fleet_events:rate10s', -1):.2f}s, "
          f"within 2% {r['within_tolerance'].get('loggen:fleet_events:rate10s', -1):.2f}s after start")
    return 0 if ok else 1


def bench() -> int:
    """Seconds from exec to the first non-empty value and to a value within 2 %, per rule."""
    variants = [
        ("1s scrape/eval, DEFAULT_FLAGS", {"scrape": "1s", "evaluation": "1s"}),
        ("1s scrape/eval, upstream defaults (WAL compression on, 15d retention)",
         {"scrape": "1s", "evaluation": "1s", "base_flags": ("--web.enable-lifecycle",)}),
        ("250ms scrape/eval, DEFAULT_FLAGS", {"scrape": "250ms", "evaluation": "250ms"}),
    ]
    for name, kw in variants:
        r = run_once(("1s", "2s", "3s", "5s", "10s"), verbose=False, **kw)  # type: ignore[arg-type]
        print(f"== {name}: ready {r['ready']:.2f}s, all targets up {r['targets_up']:.2f}s")
        for k in sorted(r["first_value"]):
            acc = r["within_tolerance"].get(k)
            print(f"   {k:30s} first {r['first_value'][k]:5.2f}s (value {r['values'][k + ' first']:7.1f})"
                  f"  within 2% {'never' if acc is None else f'{acc:5.2f}s'}"
                  f" (value {r['values'].get(k, float('nan')):.1f})")
    return 0


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "demo"
    sys.exit({"demo": demo, "bench": bench}[cmd]())
