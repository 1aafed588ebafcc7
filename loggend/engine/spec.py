"""The frozen description of one worker's job: what to render and where to send it.

Built by the control plane (CLI, config, supervisor) from validated input; the engine only reads
it. Nothing here validates user input: by the time a spec exists, its values are known good.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TRANSPORTS = ("auto", "gso", "sendmmsg", "sendto")
TIMEZONES = ("local", "utc")


@dataclass(frozen=True)
class MessageSpec:
    seed: int = 1
    hosts: int = 1000                 # simulated hosts the stream speaks for
    pool_size: int = 100_000          # pre-rendered messages per worker, a power of ten
    sequence: bool = True             # append "stream=<id> seq=<n>" to every message
    timezone: str = "local"           # "local" or "utc" timestamps
    pri_mix: tuple[tuple[int, float], ...] = ()  # (PRI, weight); empty = each template's own
    max_length: int = 1024            # bytes per datagram, RFC 3164's limit by default


@dataclass(frozen=True)
class WorkerSpec:
    host: str                         # numeric address, already resolved
    port: int
    index: int = 0                    # worker index: picks its stream and counter slot
    cpu: int | None = None            # CPU to pin to; None = leave affinity alone
    takes_over: int = 0               # pid of the worker this one replaces at a reload (0: none)
    transport: str = "auto"
    stream_id: str = "w"              # prefix of the stream label: worker 3 sends "stream=w3"
    messages: MessageSpec = field(default_factory=MessageSpec)

    @property
    def stream(self) -> str:
        return f"{self.stream_id}{self.index}"
