"""The frozen description of one worker's job: what to render and where and how to send it.

Built by the control plane (CLI, config, supervisor) from validated input; the engine only reads
it. Nothing here validates user input: by the time a spec exists, its values are known good.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loggend.engine.formats import DEFAULT_ENTERPRISE
from loggend.engine.replay import ReplaySpec
from loggend.engine.tokens import UserTemplate

TRANSPORTS = ("auto", "gso", "sendmmsg", "sendto")
TIMEZONES = ("local", "utc")
PROTOCOLS = ("udp", "tcp", "tls")
STREAM_FRAMINGS = ("octet-counting", "lf")          # RFC 6587, for tcp and tls


@dataclass(frozen=True)
class MessageSpec:
    seed: int = 1
    hosts: int = 1000                 # simulated hosts the stream speaks for
    pool_size: int = 100_000          # pre-rendered messages per worker, a power of ten
    sequence: bool = True             # carry the stream id and a sequence number in every message
    timezone: str = "local"           # "local" or "utc" timestamps
    pri_mix: tuple[tuple[int, float], ...] = ()  # (PRI, weight); empty = each template's own
    max_length: int = 1024            # bytes per message (framing aside), RFC 3164's limit by default
    format: str = "rfc3164"           # rfc3164 | rfc5424 | cef | leef | json
    enterprise: int = DEFAULT_ENTERPRISE   # the RFC 5424 SD-ID's private enterprise number
    framing: str = ""                 # "" (UDP: one message per datagram), "octet-counting" or "lf"
    templates: tuple[UserTemplate, ...] = ()   # the user's own, mixed with the catalogue by weight
    catalogue: bool = True            # the built-in templates too (False: only the user's)
    replay: ReplaySpec | None = None  # send a captured file's lines instead of generated messages
    # A mix of vendor sources instead of the catalogue: (name, share of the events), rendered before
    # the workers fork (loggend.content.mix), in each source's ``form`` ("": its own, the default).
    sources: tuple[tuple[str, float], ...] = ()
    form: str = ""


@dataclass(frozen=True)
class TlsSpec:
    """TLS client settings; the files were checked when the config was loaded."""

    ca: str = ""                      # CA bundle ("" = the system's)
    cert: str = ""                    # client certificate (mutual TLS), "" = none
    key: str = ""
    verify: bool = True
    server_name: str = ""             # SNI and the name verified ("" = the target as written)


@dataclass(frozen=True)
class WorkerSpec:
    host: str                         # numeric address, already resolved
    port: int
    target_name: str = ""             # the target as written (TLS server name when none is given)
    index: int = 0                    # worker index: picks its stream and counter slot
    cpu: int | None = None            # CPU to pin to; None = leave affinity alone
    takes_over: int = 0               # pid of the worker this one replaces at a reload (0: none)
    transport: str = "auto"           # the UDP send method
    protocol: str = "udp"             # udp | tcp | tls
    tls: TlsSpec = field(default_factory=TlsSpec)
    stream_id: str = "w"              # prefix of the stream label: worker 3 sends "stream=w3" ("i2.w3" in a fleet)
    messages: MessageSpec = field(default_factory=MessageSpec)

    @property
    def stream(self) -> str:
        return f"{self.stream_id}{self.index}"
