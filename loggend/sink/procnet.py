"""What the kernel says about sockets, from ``/proc/net/{udp,udp6,tcp,tcp6}``.

* ``queue_figures(inodes)``: drops and bytes queued (``rx_queue``) of our own UDP sockets, by
  inode: the sink's kernel drops and how far behind it is.
* ``listeners(ports, protocol)``: every socket *receiving* on those ports (UDP: bound and not
  connected; TCP: listening), whoever owns it: another sink or a SIEM on the same ports takes a
  share of the flows through ``SO_REUSEPORT``, which nothing else would tell.
* ``queued_bytes(ports)``: bytes waiting in the receive queues of the UDP sockets on those ports
  (for the parent, which does not know its children's inodes).

Every reader returns what it could read; a missing or odd file counts as empty.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

UDP_FILES = ("/proc/net/udp", "/proc/net/udp6")
TCP_FILES = ("/proc/net/tcp", "/proc/net/tcp6")
TCP_LISTEN = "0A"                  # the st column of a listening TCP socket


def address(text: str) -> str:
    """The kernel's hex address (32-bit words in host order, little-endian) as an IP address string."""
    raw = bytes.fromhex(text)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


@dataclass(frozen=True)
class Row:
    local_address: str
    local_port: int
    remote_port: int
    state: str
    rx_queue: int                  # bytes in the receive queue (memory the kernel charges, UDP)
    uid: int
    inode: int
    drops: int                     # UDP only (0 for TCP)


def rows(files: tuple[str, ...]) -> Iterator[Row]:
    for path in files:
        try:
            with open(path, encoding="ascii") as f:
                next(f, None)
                for line in f:
                    cols = line.split()
                    if len(cols) < 10:
                        continue
                    try:
                        host, local = cols[1].rsplit(":", 1)
                        remote = cols[2].rsplit(":", 1)[1]
                        rx = cols[4].split(":")[1]
                        yield Row(address(host), int(local, 16), int(remote, 16), cols[3], int(rx, 16), int(cols[7]),
                                  int(cols[9]), int(cols[12]) if len(cols) > 12 and cols[12].isdigit() else 0)
                    except (IndexError, ValueError):
                        continue
        except OSError:
            continue


def queue_figures(inodes: set[int], files: tuple[str, ...] = UDP_FILES) -> tuple[int, int]:
    """(datagrams the kernel dropped, bytes queued) over the UDP sockets with these inodes."""
    drops = queued = 0
    for row in rows(files):
        if row.inode in inodes:
            drops += row.drops
            queued += row.rx_queue
    return drops, queued


def receives_for(row: Row, host: str) -> bool:
    """Would a socket at ``row`` take datagrams or connections meant for ``host`` on its port? The
    same address does (``SO_REUSEPORT`` splits the flows), and any address does when ``host`` is a
    wildcard (a more specific socket wins every flow to its address)."""
    ours = ipaddress.ip_address(host)
    theirs = ipaddress.ip_address(row.local_address)
    if isinstance(theirs, ipaddress.IPv6Address) and theirs.ipv4_mapped is not None:
        theirs = theirs.ipv4_mapped
    return theirs == ours or ours.is_unspecified


def listeners(ports: tuple[int, ...], protocol: str = "udp", host: str = "") -> list[Row]:
    """Sockets receiving on ``ports``: UDP bound and unconnected, or TCP listening (any owner); with
    ``host``, only those that would take a share of what is sent to ``host``."""
    wanted = set(ports)
    if protocol == "udp":
        found = [r for r in rows(UDP_FILES) if r.local_port in wanted and r.remote_port == 0]
    else:
        found = [r for r in rows(TCP_FILES) if r.local_port in wanted and r.state == TCP_LISTEN]
    return [r for r in found if not host or receives_for(r, host)]


def queued_bytes(ports: tuple[int, ...], host: str = "") -> int:
    """Bytes waiting in the receive queues of the UDP sockets receiving on ``ports`` (for ``host``)."""
    return sum(r.rx_queue for r in listeners(ports, "udp", host))
