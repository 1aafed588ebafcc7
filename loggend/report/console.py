"""What the operator reads in a terminal or the journal: the live line and the end-of-run summary.

Both are built from ``loggend.report.totals`` objects, like every other summary of a run.
"""

from __future__ import annotations

import math
import time

from loggend.engine.counters import STATE_RUNNING, SlotSnapshot
from loggend.fleet import format_time
from loggend.parsers import format_ports, format_size, plural
from loggend.profiles import parse_profile
from loggend.report.totals import RunTotals, SinkTotals, SlotSums, transports
from loggend.sink.accounting import MAX_STREAMS

MB = 1e6
SHORT_WHY = 120                     # a reason the lost line repeats; a longer one only the loss line says
BEHIND_SHOWN_BYTES = 1 << 20        # the live line says how far behind the sink is from this much queued on
SILENT_SHOWN_SECONDS = 1.0          # ... and that it is silent when its last heartbeat is this old
DOWN_SHOWN_SECONDS = 0.05           # a worker down (or without a connection) this long is named as a reason
REFUSED_SHOWN = 8                   # the summary names this many refusing ports, then says how many more

def errors_text(errors: dict[str, int]) -> str:
    parts = [f"{kind}={n:,}" for kind, n in errors.items() if n]
    return " ".join(parts) if parts else "0"


class LiveLine:
    """Rate over the last interval from the monotonic counters."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.last_time = started
        self.last_sent = 0

    def line(self, now: float, snaps: list[SlotSnapshot], workers: int, sink: SinkTotals | None = None,
             target: str = "", alive: set[int] | None = None) -> str:
        """``target``: the rate due now (it follows a profile and live changes), as ``target_text`` says;
        ``alive``: the pids of the workers that are processes now (a killed worker's slot still says
        running: only a live process counts)."""
        sums = SlotSums.of(snaps)
        sent = sums.sent
        eps = (sent - self.last_sent) / max(now - self.last_time, 1e-9)
        self.last_time, self.last_sent = now, sent
        live = [s for s in snaps[:workers] if s.state == STATE_RUNNING and (alive is None or s.pid in alive)]
        running = len(live)
        down = sum(s.link_down for s in live)
        link = f", {down} not connected" if down else ""
        received = ""
        if sink is not None:
            behind = f" behind {format_size(sink.backlog_bytes)}" if sink.backlog_bytes >= BEHIND_SHOWN_BYTES else ""
            silent = (time.monotonic_ns() - sink.heartbeat_ns) / 1e9 if sink.heartbeat_ns else 0.0
            if silent >= SILENT_SHOWN_SECONDS:
                behind += f" (sink silent {silent:.0f} s)"
            # of the run's own streams: a scenario stream or another sender's messages are no part of it
            own, lost, flight = sink.run_received, sink.lost_shown, sink.in_flight(sent)
            received = f"received {own:,} lost {lost} in flight {flight:,}{behind}  "
        target = f"target {target}  " if target else ""
        return (f"[{now - self.started:6.1f}s] {eps:12,.0f} ev/s  {target}sent {sent:15,}  {received}"
                f"errors {errors_text(sums.errors)}  restarts {sums.restarts}  "
                f"transport {transports(snaps) or '-'}  ({running}/{workers} running{link})")


def profile_end(text: str) -> str:
    """What comes after a profile's segments, when they end: `` (then held at 40,000 ev/s)``."""
    profile = parse_profile("profile", text)
    if profile is None or profile.repeat or math.isinf(profile.segments[-1].seconds):
        return ""
    return f" (then held at {profile.segments[-1].end_rate:,.0f} ev/s)"


def target_text(rate: float, state: str) -> str:
    """The live line's target: ``250,000``, ``unlimited`` or ``paused``."""
    if state == "paused":
        return "paused"
    return f"{rate:,.0f}" if rate else "unlimited"


def summary(t: RunTotals) -> str:
    target = t.timing or ("profile" if t.profile else f"{t.rate:,.0f} ev/s" if t.rate else "unlimited")
    if t.live_changes:
        target += " as configured"                  # (a reload changes it); the live line says where it ended
    if t.instances > 1:
        fleet = f"{t.fleet_rate:,.0f} ev/s" if t.fleet_rate else "unlimited"
        target += f" (instance {t.instance}/{t.instances} of {fleet}, run {t.run_id})"
    lines = [
        "summary:",
        f"  target      {t.target}  rate {target}  transport {t.transport or '-'}",
    ]
    if t.start is not None and t.start.requested is not None and t.start.late_ms is not None:
        asked = format_time(t.start.requested)
        lines.append(f"  start       {asked} as asked; first send {t.start.late_ms:.1f} ms late")
    if t.profile:
        lines.append(f"  profile     {t.profile}{profile_end(t.profile)}")
    if t.live_changes or t.paused_seconds:
        last = f"; at the end {t.live_last}" if t.live_last else ""
        lines.append(f"  live        {plural(t.live_changes, 'change')} (rate, profile, pause, resume by loggend ctl; "
                     f"SIGUSR1/SIGUSR2), paused {t.paused_seconds:.1f} s in all{last}")
    lines.append(f"  sent        {t.sent:,} events, {t.bytes / MB:,.1f} MB in {t.seconds:.2f} s")
    if t.seconds:
        lines.append(f"  mean rate   {t.mean_rate:,.0f} ev/s, {t.bytes / MB / t.seconds:,.1f} MB/s")
    if t.planned is not None:
        lines.append(f"  planned     {plan_text(t)}")
    lines.append(f"  errors      {errors_text(t.errors)}")
    if t.refused_by_port:
        shown = list(t.refused_by_port.items())
        more = f" and {len(shown) - REFUSED_SHOWN} more ports" if len(shown) > REFUSED_SHOWN else ""
        lines.append("  refused     " + ", ".join(f"port {port} {n:,}" for port, n in shown[:REFUSED_SHOWN])
                     + f"{more} (ICMP port unreachable: nothing listened there)")
        if t.unanswered:
            sent = sum(t.unanswered.values())
            lines.append(f"              and {sent:,} of the events counted as sent went to "
                         f"{plural(len(t.unanswered), 'port')} where nothing ever listened "
                         f"({format_ports(tuple(t.unanswered))}): lost as well")
    if t.transport in ("tcp", "tls"):
        lines.append(f"  push-back   {pushback_text(t)}")
    lines.append(f"  restarts    {t.restarts}")
    if t.peak_memory:
        limit = f" (limit {format_size(t.memory_limit)})" if t.memory_limit else ""
        lines.append(f"  peak memory {format_size(t.peak_memory)} (PSS of supervisor and children){limit}")
    if len(t.workers) > 1:
        lines.append("  worker  port   cpu  state        sent  restarts  errors")
        for w in t.workers:
            cpu = "-" if w.cpu is None else str(w.cpu)
            port = "-" if w.port is None else str(w.port)
            lines.append(f"  {w.index:6d}  {port:>5}  {cpu:>3}  {w.state:8}  {w.sent:10,}  {w.restarts:8d}  "
                         f"{sum(w.errors.values()):,}")
    if t.sink is not None:
        lines.append(sink_summary(t.sink, t))
    return "\n".join(lines)


def pushback_text(t: RunTotals) -> str:
    """TCP/TLS: time blocked on the receiver, reconnects and what they may have cost."""
    worst = max(t.workers, key=lambda w: w.blocked_seconds, default=None)
    share = f" ({t.blocked_seconds / t.seconds / max(1, len(t.workers)) * 100:.1f} % of the workers' time)" \
        if t.seconds else ""
    most = f", most worker {worst.index} {worst.blocked_seconds:.2f} s" if worst and len(t.workers) > 1 \
        and worst.blocked_seconds else ""
    down = f"connection down {t.disconnected_seconds:.2f} s; " if t.disconnected_seconds >= DOWN_SHOWN_SECONDS else ""
    at_close = f", {t.unsent_at_close:,} of them when it closed at the end" if t.unsent_at_close else ""
    return (f"blocked {t.blocked_seconds:.2f} s waiting for the receiver{share}{most}; {down}"
            f"reconnects {t.reconnects:,}; possibly lost {t.possibly_lost:,} "
            f"(unsent in the kernel when a connection dropped or closed{at_close})")


def sink_summary(t: SinkTotals, run: RunTotals | None = None) -> str:
    """What a sink saw; with ``run`` (the generator is the same run) sent beside it, and the loss verdict."""
    lines = [
        "local sink:" if run is not None else "sink summary:",
        f"  received    {t.received:,} events ({t.bytes:,} bytes) from {plural(t.streams, 'stream')} "
        f"({plural(t.processes, 'process', 'processes')})",
        f"  lost        {lost_text(t, run)}",
        f"  gaps        {t.gaps:,}  of them late (reordered) {t.late:,}  duplicates {t.duplicates:,}  "
        f"without sequence {t.unsequenced:,}",
    ]
    if t.connections or t.tls_failures:
        lines.append(f"  connections {t.connections:,} accepted ({t.open:,} open)  torn messages {t.torn:,}  "
                     f"TLS handshakes failed {t.tls_failures:,}  not syslog {t.rejected:,}")
        if t.dropped_cap or t.dropped_idle:
            lines.append(f"  dropped     {t.dropped_cap:,} connections at the cap per sink process, "
                         f"{t.dropped_idle:,} idle")
    else:
        lines.append(f"  kernel drops {t.kernel_drops:,} (the sink's receive queues)")
    if t.empty:
        lines.append(f"  empty       {t.empty:,} empty frames or blank lines (no events: not received)")
    if t.outliers:
        lines.append(f"  outliers    {t.outliers:,} (numbers too far from their stream's to be gaps: forged or "
                     "corrupt; not counted as loss)")
    scenarios = run.numbered_injected if run is not None else 0
    if t.foreign and scenarios and t.foreign_streams == 1 and t.foreign <= scenarios:
        lines.append(f"  scenarios   {plural(t.foreign, 'message')} of the run's scenario stream ({scenarios:,} sent; "
                     "counted apart, in no worker's figures)")
    elif t.foreign:
        mine = f"; up to {scenarios:,} of them the run's scenarios'" if scenarios else ""
        lines.append(f"  foreign     {plural(t.foreign, 'message')} of {plural(t.foreign_streams, 'stream')} this run "
                     f"did not announce (counted apart, in no worker's figures){mine}")
    if t.overflow:
        lines.append(f"  over cap    {t.overflow:,} messages of streams beyond the {MAX_STREAMS:,} a sink process "
                     "tracks (counted, not checked)")
    if t.gaps_forgotten:
        lines.append(f"  gap ranges  {t.gaps_forgotten:,} forgotten over the caps (their numbers stay lost); "
                     f"{t.stale:,} arrived below them (late or duplicate: cannot tell)")
    if run is not None and run.ends is not None and run.ends.total:
        e = run.ends
        lines.append(f"  not seen    {e.total:,} sent and beyond sequence accounting: {e.after:,} after the last "
                     f"number received, {e.before:,} before the first, {e.never_seen:,} in "
                     f"{plural(e.streams_never_seen, 'stream')} never seen")
    why = run.unknown if run is not None else t.unknown()
    if why:
        lines.append("  loss        unknown: " + "; ".join(why))
    return "\n".join(lines)


def lost_text(t: SinkTotals, run: RunTotals | None) -> str:
    """``0 (0.0000 %) by sequence; sent - received = 0``, or ``unknown (...)`` when it cannot be known."""
    beside = f"; sent - received = {run.sent_minus_received:,}" if run is not None else ""
    why = run.unknown if run is not None else t.unknown()
    if why:                                     # a long why is said once, on the loss line below
        said = why[0] if len(why[0]) <= SHORT_WHY else "the loss line says why"
        unnumbered = (f" (the gaps include the numbers of the {t.unsequenced:,} messages that arrived without one)"
                      if t.unsequenced else "")
        return f"unknown ({said}); by sequence {t.lost:,} so far{unnumbered}{beside}"
    if run is not None and run.lost is not None and run.lost != t.lost:
        return (f"{run.lost:,} ({run.loss_percent or 0:.4f} %): {t.lost:,} by sequence, {run.lost - t.lost:,} at the "
                f"ends of streams (sent, never received, nothing left to read){beside}")
    return f"{t.lost:,} ({t.loss_percent:.4f} %) by sequence{beside}"


def plan_text(t: RunTotals) -> str:
    """Planned against sent, and why they differ: ``planned 1,000, sent 990: worker 1 was down 1.6 s...``."""
    assert t.planned is not None
    if t.shortfall == 0:
        return f"{t.planned:,} events: all sent"
    why = [f"worker {w.index} was down {w.down_seconds:.1f} s ({w.forgiven:,} not made up)" if w.forgiven
           else f"worker {w.index} was down {w.down_seconds:.1f} s (made up)"
           for w in t.workers if w.down_seconds >= DOWN_SHOWN_SECONDS]
    why += [f"worker {w.index} had no connection for {w.disconnected_seconds:.1f} s" for w in t.workers
            if w.disconnected_seconds >= DOWN_SHOWN_SECONDS]
    stalled = sum(w.forgiven for w in t.workers if w.down_seconds < DOWN_SHOWN_SECONDS)
    if stalled:
        why.append(f"{stalled:,} given up after stalls (more than 1 s behind)")
    kinds = [(kind, n) for kind, n in t.errors.items() if n]
    if kinds == [("refused", t.refused)]:
        why.append(f"{t.refused:,} refused by the kernel")
    elif kinds:
        why.append(f"{t.refused:,} not sent, the send failed: "
                   + ", ".join(f"{n:,} {kind.replace('_', ' ')}" for kind, n in kinds))
    rest = (t.shortfall or 0) - t.forgiven - t.refused
    if rest > 0:
        why.append(f"{rest:,} still due when the run ended (stopped early, or still catching up)")
    short = t.shortfall or 0
    if short < 0:
        why.append("the workers sent past their share (a TLS write the receiver had taken part of is finished, "
                   "or a change of rate reached them late)")
    gap = f"{short:,} short" if short > 0 else f"{-short:,} more than planned"
    return f"{t.planned:,} events, sent {t.sent:,} ({gap}): " + "; ".join(why)
