"""deploy/prometheus (rules, with promtool's own checks and unit tests) and deploy/grafana (the dashboard).

The dashboard's queries are held against what a real ``loggend run --local-sink`` exports on
/metrics: every metric name a panel or a variable uses must be one the program really serves
(or a recording rule of deploy/prometheus), and promtool must parse every query.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import urllib.request

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import ROOT, wait_until
from tests.support.prometheus import INSTALL_HINT, PROMTOOL, promtool
from tests.support.promql import grafana_variables, metric_names

RULES = ROOT / "deploy" / "prometheus" / "loggen.rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "loggen.rules.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "loggen.json"
CORE_PANELS = {"stat", "timeseries", "gauge", "bargauge", "table", "text", "row"}   # Grafana's own, no plugins
VARIABLES = {"run_id": ".*", "instance_index": ".*", "__rate_interval": "1m", "datasource": "prometheus"}

needs_promtool = pytest.mark.skipif(shutil.which(PROMTOOL) is None,
                                    reason=f"promtool not found on PATH; {INSTALL_HINT}")


def rules() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panel_queries() -> list[tuple[str, str]]:
    """(panel title, expr) for every query of every panel."""
    return [(p["title"], t["expr"]) for p in dashboard()["panels"] for t in p.get("targets", [])]


def variable_queries() -> list[str]:
    out = []
    for v in dashboard()["templating"]["list"]:
        if v["type"] == "query":
            m = re.fullmatch(r"label_values\((.+),\s*\w+\)", v["query"]["query"])
            assert m, v["query"]
            out.append(m.group(1))
    return out


# --- the rules ------------------------------------------------------------------------------------

@needs_promtool
def test_promtool_accepts_the_rules():
    out = promtool("check", "rules", str(RULES))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(rules())} rules found" in out.stdout


@needs_promtool
def test_promtool_unit_tests_every_alert_firing_and_quiet():
    out = promtool("test", "rules", str(RULE_TESTS))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    cases = [c for t in tests for c in t.get("alert_rule_test", [])]
    for alert in (r["alert"] for r in rules() if "alert" in r):
        assert any(c["alertname"] == alert and c["exp_alerts"] for c in cases), f"{alert} is never seen firing"
        assert any(c["alertname"] == alert and not c["exp_alerts"] for c in cases), f"{alert} is never seen quiet"
    recorded = {r["record"] for r in rules() if "record" in r}
    tested = {m for t in tests for c in t.get("promql_expr_test", []) for m in metric_names(c["expr"])}
    assert recorded <= tested, f"recording rules without a test: {recorded - tested}"


def test_the_fleet_rules_add_up_per_run():
    for r in rules():
        if "record" in r:
            assert r["record"].startswith("run_id:"), r["record"]      # level:metric:operations
            assert "by (run_id)" in r["expr"], r["expr"]


# --- the dashboard --------------------------------------------------------------------------------

def test_the_dashboard_is_offline_grafana_json_with_core_panels_only():
    d = dashboard()
    text = DASHBOARD.read_text()
    assert d["uid"] and d["title"] and d["schemaVersion"] >= 36
    assert "http://" not in text and "https://" not in text and "__requires" not in d     # nothing remote
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert {"run_id", "instance_index"} <= set(variables)           # one instance or a whole fleet
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in d["panels"]:
        assert p["type"] in CORE_PANELS, p["type"]
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert all(t["datasource"] == p["datasource"] for t in p["targets"]), p["title"]
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, f"{p['title']} overlaps another panel"
        cells |= mine


def test_the_dashboard_shows_what_the_issue_asks_for():
    used = {n for _, e in panel_queries() for n in metric_names(e)}
    for name in ("loggen_events_sent_total", "loggen_target_events_per_second", "loggen_sink_lost",
                 "loggen_send_blocked_seconds_total", "loggen_send_errors_total", "loggen_worker_cpu_seconds_total",
                 "loggen_memory_pss_bytes", "loggen_worker_resident_memory_bytes"):
        assert name in used, name
    per_worker = [e for _, e in panel_queries() if "by (instance_index, worker)" in e]
    assert any("loggen_events_sent_total" in e for e in per_worker)


@needs_promtool
def test_promtool_parses_every_dashboard_query(tmp_path):
    exprs = [grafana_variables(e, VARIABLES) for _, e in panel_queries()]
    exprs += [grafana_variables(e, VARIABLES) for e in variable_queries()]
    doc = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:query_{i}", "expr": e}
                                                      for i, e in enumerate(exprs)]}]}
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump(doc))
    out = promtool("check", "rules", str(path))
    assert out.returncode == 0, out.stdout + out.stderr


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.network
def test_every_dashboard_query_uses_metrics_a_real_run_exports(loggend):
    port = free_udp_port()
    proc = loggend("run", "--config", "/dev/null", "--target", "127.0.0.1", "--ports", str(port), "--workers", "2",
                   "--rate", "2000", "--local-sink", "--sink-processes", "1", "--run-id", "names",
                   "--dashboard", "127.0.0.1:0", "--dashboard-interval", "0.2s")
    url = re.search(r"(http://\S+?)/ ", proc.wait_line("dashboard: http://", stream="err")).group(1)

    def exported() -> set[str] | None:
        with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
            body = r.read().decode()
        names = {s.name for f in text_string_to_metric_families(body) for s in f.samples}
        # per-process figures appear once the web process has sampled the running workers
        return names if {"loggen_worker_cpu_seconds_total", "loggen_sink_received_total"} <= names else None
    names = wait_until(exported, timeout=20, what="worker CPU and sink figures on /metrics")
    recorded = {r["record"] for r in rules() if "record" in r}
    used = {(title, n) for title, e in panel_queries() for n in metric_names(e)}
    used |= {("variables", n) for e in variable_queries() for n in metric_names(e)}
    missing = sorted((title, n) for title, n in used if n not in names | recorded)
    assert not missing, f"queries use metrics nobody exports: {missing}"
    rule_names = {n for r in rules() for n in metric_names(r["expr"])}
    assert rule_names <= names | recorded, rule_names - names - recorded
