"""What the operator reads: a live line per second and the end-of-run summary."""

from __future__ import annotations

from loggend.config import Config, format_size
from loggend.engine.counters import STATE_RUNNING, SlotSnapshot
from loggend.engine.transport import ERROR_KINDS
from loggend.sink import S_LATE, S_LOST, S_RECEIVED, SinkTotals

MB = 1e6


def _errors_text(errors: list[int]) -> str:
    parts = [f"{kind}={n:,}" for kind, n in zip(ERROR_KINDS, errors) if n]
    return " ".join(parts) if parts else "0"


def _sum_errors(snapshots: list[SlotSnapshot]) -> list[int]:
    return [sum(s.errors[k] for s in snapshots) for k in range(len(ERROR_KINDS))]


def _modes(snapshots: list[SlotSnapshot]) -> str:
    return ",".join(sorted({s.transport for s in snapshots if s.transport})) or "-"


class LiveLine:
    """Rate over the last interval from the monotonic counters."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.last_time = started
        self.last_sent = 0

    def line(self, now: float, snaps: list[SlotSnapshot], workers: int, sink: SinkTotals | None = None) -> str:
        sent = sum(s.sent for s in snaps)
        eps = (sent - self.last_sent) / max(now - self.last_time, 1e-9)
        self.last_time, self.last_sent = now, sent
        running = sum(1 for s in snaps[:workers] if s.state == STATE_RUNNING)
        restarts = sum(s.restarts for s in snaps)
        received = f"received {sink.received:,} lost {sink.lost:,}  " if sink is not None else ""
        return (f"[{now - self.started:6.1f}s] {eps:12,.0f} ev/s  sent {sent:15,}  {received}"
                f"errors {_errors_text(_sum_errors(snaps))}  restarts {restarts}  "
                f"transport {_modes(snaps)}  ({running}/{workers} running)")


def active_seconds(snapshots: list[SlotSnapshot]) -> float:
    """Seconds between the first worker starting to send and the last heartbeat."""
    started = [s.started_ns for s in snapshots if s.started_ns]
    if not started:
        return 0.0
    return max(0.0, (max(s.heartbeat_ns for s in snapshots) - min(started)) / 1e9)


def summary(snapshots: list[SlotSnapshot], elapsed: float, config: Config, peak_memory: int = 0) -> str:
    sent = sum(s.sent for s in snapshots)
    nbytes = sum(s.bytes for s in snapshots)
    seconds = active_seconds(snapshots) or elapsed
    target = f"{config.rate:,.0f} ev/s" if config.rate else "unlimited"
    lines = [
        "summary:",
        f"  target      {config.target}  rate {target}  transport {_modes(snapshots)}",
        f"  sent        {sent:,} events, {nbytes / MB:,.1f} MB in {seconds:.2f} s",
    ]
    if seconds:
        lines.append(f"  mean rate   {sent / seconds:,.0f} ev/s, {nbytes / MB / seconds:,.1f} MB/s")
    lines.append(f"  errors      {_errors_text(_sum_errors(snapshots))}")
    lines.append(f"  restarts    {sum(s.restarts for s in snapshots)}")
    if peak_memory:
        limit = f" (limit {format_size(config.memory_limit)})" if config.memory_limit else ""
        lines.append(f"  peak memory {format_size(peak_memory)} (PSS of supervisor and workers){limit}")
    if len(snapshots) > 1:
        lines.append("  worker  port   cpu  state        sent  restarts  errors")
        for i, s in enumerate(snapshots):
            spec = config.worker_spec(i)
            cpu = "-" if spec.cpu is None else str(spec.cpu)
            lines.append(f"  {i:6d}  {spec.port:5d}  {cpu:>3}  {s.state_name:8}  {s.sent:10,}  {s.restarts:8d}  "
                         f"{sum(s.errors):,}")
    return "\n".join(lines)


def sink_summary(t: SinkTotals, sent: int) -> str:
    doc = t.document()
    return "\n".join((
        "local sink:",
        f"  received    {t.received:,} events from {t.streams} streams ({t.processes} processes)",
        f"  lost        {t.lost:,} ({doc['loss_percent']:.4f} %) by sequence; sent - received = {sent - t.received:,}",
        f"  reordered   {t.late:,}  duplicates {t.duplicates:,}  without sequence {t.unsequenced:,}",
        f"  kernel drops {t.kernel_drops:,} (the sink's receive queues)",
    ))


def summary_json(snapshots: list[SlotSnapshot], elapsed: float, config: Config, peak_memory: int,
                 sink: SinkTotals | None, streams: list[list[int]] | None) -> dict[str, object]:
    """The end-of-run summary as data (``loggend run --summary-json PATH``)."""
    workers = []
    for i, s in enumerate(snapshots):
        row: dict[str, object] = {"index": i, "port": config.worker_spec(i).port, "sent": s.sent, "bytes": s.bytes,
                                  "errors": dict(zip(ERROR_KINDS, s.errors)), "restarts": s.restarts,
                                  "state": s.state_name}
        if streams is not None:
            row["received"] = streams[i][S_RECEIVED]
            row["lost"] = streams[i][S_LOST] - streams[i][S_LATE]
        workers.append(row)
    return {
        "target": config.target, "rate": config.rate, "seconds": active_seconds(snapshots) or elapsed,
        "sent": sum(s.sent for s in snapshots), "bytes": sum(s.bytes for s in snapshots),
        "errors": dict(zip(ERROR_KINDS, _sum_errors(snapshots))), "restarts": sum(s.restarts for s in snapshots),
        "peak_memory_bytes": peak_memory, "transport": _modes(snapshots), "workers": workers,
        "sink": sink.document() if sink is not None else None,
    }
