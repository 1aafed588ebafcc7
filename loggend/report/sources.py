"""The shared memory of a run as its readers see it: the one thing the web process and the
supervisor (``loggend.control``) both hold. The supervisor creates the blocks before it forks
(layouts in ``loggend.engine.counters``); children write their slots; the readers add them up
with ``loggend.report.totals``.
"""

from __future__ import annotations

from dataclasses import dataclass

from loggend.engine.counters import Board, CounterBlock


@dataclass(frozen=True)
class Sources:
    """The shared memory a reader reads (it never writes any of it)."""

    block: CounterBlock                       # worker slots
    board: Board                              # what the run is
    sink_block: CounterBlock | None = None    # sink process slots
    stream_block: CounterBlock | None = None  # per-stream figures of the sink
