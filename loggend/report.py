"""What the operator reads: a live line per second and the end-of-run summary."""

from __future__ import annotations

from loggend.config import Config
from loggend.engine.counters import CounterBlock, SlotSnapshot
from loggend.engine.transport import ERROR_KINDS

MB = 1e6


def _errors_text(errors: list[int]) -> str:
    parts = [f"{kind}={n:,}" for kind, n in zip(ERROR_KINDS, errors) if n]
    return " ".join(parts) if parts else "0"


def _sum_errors(snapshots: list[SlotSnapshot]) -> list[int]:
    return [sum(s.errors[k] for s in snapshots) for k in range(len(ERROR_KINDS))]


class LiveLine:
    """Rate over the last interval from the monotonic counters."""

    def __init__(self, block: CounterBlock, started: float) -> None:
        self.block = block
        self.started = started
        self.last_time = started
        self.last_sent = 0

    def line(self, now: float) -> str:
        snaps = self.block.snapshots()
        sent = sum(s.sent for s in snaps)
        eps = (sent - self.last_sent) / max(now - self.last_time, 1e-9)
        self.last_time, self.last_sent = now, sent
        modes = ",".join(sorted({s.transport for s in snaps if s.transport})) or "-"
        states = ",".join(sorted({s.state_name for s in snaps}))
        return (f"[{now - self.started:6.1f}s] {eps:12,.0f} ev/s  sent {sent:15,}  "
                f"errors {_errors_text(_sum_errors(snaps))}  transport {modes}  ({states})")


def active_seconds(snapshots: list[SlotSnapshot]) -> float:
    """Seconds between the first worker starting to send and the last heartbeat."""
    started = [s.started_ns for s in snapshots if s.started_ns]
    if not started:
        return 0.0
    return max(0.0, (max(s.heartbeat_ns for s in snapshots) - min(started)) / 1e9)


def summary(snapshots: list[SlotSnapshot], elapsed: float, config: Config) -> str:
    sent = sum(s.sent for s in snapshots)
    nbytes = sum(s.bytes for s in snapshots)
    seconds = active_seconds(snapshots) or elapsed
    modes = ",".join(sorted({s.transport for s in snapshots if s.transport})) or "-"
    target = f"{config.rate:,.0f} ev/s" if config.rate else "unlimited"
    return "\n".join((
        "summary:",
        f"  target      {config.target_name or config.host}:{config.port}  rate {target}  transport {modes}",
        f"  sent        {sent:,} events, {nbytes / MB:,.1f} MB in {seconds:.2f} s",
        f"  mean rate   {sent / seconds:,.0f} ev/s, {nbytes / MB / seconds:,.1f} MB/s" if seconds else "",
        f"  errors      {_errors_text(_sum_errors(snapshots))}",
    ))
