"""The detection-by-load section of the find-limit and perftest reports."""

from __future__ import annotations

from loggend.tools.detection_report import html_section


def level(rate: float, state: str, latency: float | None) -> dict:
    return {"level": f"trial at {rate:g}", "rate": rate,
            "instances": [{"id": f"ssh-bruteforce-{rate:g}", "scenario": "ssh-bruteforce", "messages": 5,
                           "state": state, "latency_seconds": latency}]}


def test_a_missed_instance_is_drawn_at_the_timeout_in_a_series_of_its_own():
    """Missed instances had no point in the chart: a chart of two detections said nothing of the third level."""
    doc = {"by": ["command:x"], "timeout_seconds": 30.0,
           "levels": [level(1000, "detected", 1.5), level(2000, "detected", 2.5), level(4000, "missed", None)]}
    section = html_section(doc)
    assert "ssh-bruteforce missed (drawn at the 30 s timeout)" in section
    assert section.count("<td") >= 4 and "missed after 30.0 s" in section


def test_nothing_missed_draws_no_missed_series():
    doc = {"by": [], "timeout_seconds": 30.0, "levels": [level(1000, "detected", 1.5)]}
    assert "missed (drawn" not in html_section(doc)


def test_without_a_detector_the_console_says_nothing_per_level():
    """find-limit --scenario without --detect printed 'detection at ...: ... not asked' for every trial."""
    from loggend.tools.detection_report import console_lines
    undetected = {"by": [], "timeout_seconds": None, "levels": [level(1000, "not asked", None)]}
    assert console_lines(undetected) == []
    detected = {"by": ["webhook"], "timeout_seconds": 30.0, "levels": [level(1000, "detected", 1.5)]}
    assert console_lines(detected) == ["detection at 1,000 ev/s (trial at 1000): ssh-bruteforce-1000 1.5 s"]
