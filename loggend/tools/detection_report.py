"""Detection by load level, for the perftest and find-limit reports: scenario x offered rate -> detected or missed.

A *level* is one trial (find-limit) or the whole run (perftest): its offered rate and the scenario
instances injected during it. ``by_load`` joins them with the run's detection verdicts (its summary's
``detection.instances``); ``html_section`` draws the table (a row per scenario, a column per level:
the latency, or missed / undecided) and a chart of latency against offered rate, so a team sees
how detection degrades towards the ingest limit.
"""

from __future__ import annotations

import html
from typing import Any

from loggend.report.charts import svg_chart


def by_load(levels: list[tuple[str, float, list[str]]], summary: dict[str, Any]) -> dict[str, Any] | None:
    """``levels``: (label, offered ev/s, instance ids injected); None when nothing was injected."""
    if not any(ids for _, _, ids in levels):
        return None
    detection = summary.get("detection") or {}
    verdicts = {v["id"]: v for v in detection.get("instances", [])}
    sent = {s["id"]: s for s in summary.get("scenarios", [])}
    out = []
    for label, rate, ids in levels:
        rows = []
        for iid in ids:
            v = verdicts.get(iid, {})
            s = sent.get(iid, {})
            rows.append({"id": iid, "scenario": s.get("scenario") or v.get("scenario") or iid.rsplit("-", 1)[0],
                         "messages": s.get("messages", 0),
                         "state": v.get("state") or ("not sent" if iid not in sent else "not asked"),
                         "latency_seconds": v.get("latency_seconds")})
        out.append({"level": label, "rate": rate, "instances": rows})
    return {"by": detection.get("by", []), "timeout_seconds": detection.get("timeout_seconds"), "levels": out}


def console_lines(doc: dict[str, Any] | None) -> list[str]:
    """A line per load level for the console: each instance detected after N s, or what else it was (none
    without a detector: every instance would read 'not asked')."""
    if not doc or not doc["by"]:
        return []
    lines = []
    for lv in sorted(doc["levels"], key=lambda lv: lv["rate"]):
        said = [f"{r['id']} {r['latency_seconds']:.1f} s" if r["state"] == "detected" and r["latency_seconds"]
                is not None else f"{r['id']} {r['state']}" for r in lv["instances"]]
        if said:
            lines.append(f"detection at {lv['rate']:,.0f} ev/s ({lv['level']}): {', '.join(said)}")
    return lines


def _cell(row: dict[str, Any]) -> str:
    if row["state"] == "detected" and row["latency_seconds"] is not None:
        return f"<td class=pass>{row['latency_seconds']:.1f} s</td>"
    return f"<td class=fail>{html.escape(row['state'])}</td>"


def html_section(doc: dict[str, Any] | None) -> str:
    if not doc:
        return ""
    levels = sorted(doc["levels"], key=lambda lv: lv["rate"])          # columns by offered rate, not trial order
    scenarios = list(dict.fromkeys(r["scenario"] for lv in levels for r in lv["instances"]))
    head = "".join(f"<th>{html.escape(lv['level'])}<br>{lv['rate']:,.0f} ev/s</th>" for lv in levels)
    body = ""
    for name in scenarios:
        cells = ""
        for lv in levels:
            rows = [r for r in lv["instances"] if r["scenario"] == name]
            cells += "".join(_cell(r) for r in rows[:1]) if rows else "<td></td>"
        body += f"<tr><td>{html.escape(name)}</td>{cells}</tr>"
    series = {name: sorted((lv["rate"], r["latency_seconds"]) for lv in levels for r in lv["instances"]
                           if r["scenario"] == name and r["latency_seconds"] is not None) for name in scenarios}
    timeout = doc["timeout_seconds"]
    for name in scenarios if timeout is not None else ():    # a missed instance is a point too: at the timeout
        missed = sorted((lv["rate"], float(timeout)) for lv in levels for r in lv["instances"]
                        if r["scenario"] == name and r["state"] == "missed")
        if missed:
            series[f"{name} missed (drawn at the {timeout:g} s timeout)"] = missed
    chart = svg_chart("detection latency against offered load", series, unit=" s", x_label="offered events/s",
                      y_label="seconds to detection", dots=True, x_from_zero=True)
    by = ", ".join(html.escape(b) for b in doc["by"]) or "none"
    return (f"<h2>detection by load</h2><p>detected by {by}; missed after {doc['timeout_seconds']} s</p>"
            f"{chart}<table><tr><th>scenario</th>{head}</tr>{body}</table>")
