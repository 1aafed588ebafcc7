"""The PromQL name reader the deploy tests rely on: it must not miss a name nor invent one."""

from tests.support.promql import grafana_variables, metric_names


def test_metric_names():
    assert metric_names('sum by (run_id) (rate(loggen_events_sent_total{run_id=~"$run_id"}[$__rate_interval]))') \
        == {"loggen_events_sent_total"}
    assert metric_names("run_id:loggen_events_sent:rate1m < 0.95 * run_id:x:sum and on (run_id) up > 0") == \
        {"run_id:loggen_events_sent:rate1m", "run_id:x:sum", "up"}
    assert metric_names('sum(a{b="c d"}) / sum(e - f + 1e3) or vector(0)') == {"a", "e", "f"}
    assert metric_names("increase(loggen_worker_restarts_total[5m]) > 0") == {"loggen_worker_restarts_total"}
    assert metric_names('count(x) by (instance_index)') == {"x"}


def test_grafana_variables():
    assert grafana_variables('x{a=~"$run_id"}[$__rate_interval] ${run_id}', {"run_id": ".*", "__rate_interval": "1m"}) \
        == 'x{a=~".*"}[1m] .*'
