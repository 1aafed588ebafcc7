"""The report charts' axes."""

import re

from loggend.report.charts import svg_chart


def y_labels(svg: str) -> list[str]:
    return re.findall(r'text-anchor="end">([^<]*)</text>', svg)


def test_a_percentage_near_100_ends_its_axis_at_100_not_200():
    points = [(float(t), 96.0 + t % 4) for t in range(20)]
    assert y_labels(svg_chart("CPU %", {"cpu": points}, goal=75, x_time=True, y_max=100.0))[-1] == "100"
    assert y_labels(svg_chart("CPU %", {"cpu": points}, goal=75, x_time=True))[-1] == "200"    # without the bound


def test_values_past_the_bound_keep_the_axis_that_holds_them():
    points = [(0.0, 150.0), (1.0, 120.0)]
    assert y_labels(svg_chart("CPU %", {"cpu": points}, y_max=100.0))[-1] == "200"
