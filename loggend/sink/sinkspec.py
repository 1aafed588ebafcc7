"""What a sink process listens on: address, ports, protocol, and for TLS its certificate."""

from __future__ import annotations

from dataclasses import dataclass

PROTOCOLS = ("udp", "tcp", "tls")


@dataclass(frozen=True)
class ServerTls:
    cert: str
    key: str
    ca: str = ""                  # verify client certificates against these (mutual TLS); "" = none asked


@dataclass(frozen=True)
class SinkSpec:
    host: str
    ports: tuple[int, ...]
    protocol: str = "udp"
    gro: bool = True              # UDP: receive GRO trains (off: one datagram per buffer)
    tls: ServerTls | None = None  # required for protocol "tls"
    # where vendor forms carry the stream and the number (loggend.content.registry.proofs)
    proofs: tuple[tuple[bytes, bytes, bytes, bytes], ...] = ()

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol {self.protocol!r} is not one of {', '.join(PROTOCOLS)}")
        if (self.protocol == "tls") != (self.tls is not None):
            raise ValueError("a TLS sink needs a certificate and key, and only a TLS sink takes one")

    def with_ports(self, ports: tuple[int, ...]) -> SinkSpec:
        return SinkSpec(self.host, ports, self.protocol, self.gro, self.tls, self.proofs)
