"""Which ``Host`` headers the dashboard answers: the guard against DNS rebinding.

With no token (the default) a page on any site could otherwise read ``/api/*`` and ``/ws``: it
rebinds its own name to 127.0.0.1 (or the dashboard's address) and the browser, thinking it talks
to that site, sends the requests to the dashboard with the attacker's name as ``Host``. So, as
local development servers do, the dashboard answers only Hosts that are its own:

* an IP address: the one it listens on, or any when it listens on every address (0.0.0.0, ::);
  a rebound name never arrives as an address;
* ``localhost`` names when it listens on loopback or on every address;
* this machine's host name (``socket.gethostname()``, no DNS lookup);
* the ``dashboard_hosts`` list: exact names, ``.example`` for example and any name under it,
  ``*`` for any.

The port in the header is not compared: the browser sends whatever port reached this socket.
"""

from __future__ import annotations

import ipaddress
import socket

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
WILDCARDS = frozenset({"0.0.0.0", "::"})
ANY = "*"


def host_name(header: str) -> str:
    """``Host`` without its port, lower case, without a final dot: ``[::1]:8080`` -> ``::1``."""
    text = header.strip().lower()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    if text.count(":") == 1:
        text = text.partition(":")[0]
    return text.rstrip(".")


def address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class HostCheck:
    def __init__(self, listen: str, allowed: tuple[str, ...] = (), machine: str | None = None) -> None:
        self.listen = address(listen)
        self.wildcard = listen in WILDCARDS
        self.loopback = self.wildcard or (self.listen is not None and self.listen.is_loopback)
        self.any = ANY in allowed
        self.names = {name.lower().rstrip(".") for name in allowed if not name.startswith(".")}
        self.suffixes = tuple(name.lower().rstrip(".") for name in allowed if name.startswith("."))
        own = (machine if machine is not None else socket.gethostname()).lower().rstrip(".")
        if own:
            self.names.add(own)

    def allows(self, header: str) -> bool:
        if self.any or not header:
            return True
        name = host_name(header)
        ip = address(name)
        if ip is not None:
            return self.wildcard or ip == self.listen or (self.loopback and ip.is_loopback)
        if self.loopback and name in LOOPBACK_NAMES:
            return True
        return name in self.names or any(name.endswith(suffix) or name == suffix[1:] for suffix in self.suffixes)
