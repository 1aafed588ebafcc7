"""A company's address plan and traffic mix, shared by every source so their logs agree.

Log content only: none of these addresses is ever a target. Internal hosts live in RFC 1918
networks laid out like a mid-size company's (user VLANs, servers, DMZ, VPN pool); outside
addresses are drawn from public unicast space, never from the documentation ranges (attack
scenarios use those, so a detection can tell them apart). Services follow what dominates real
firewall logs: 443, 80 and 53 first. Pure functions of a ``random.Random``.
"""

from __future__ import annotations

import ipaddress
import itertools
import random
from dataclasses import dataclass
from functools import cache

# (network, share of internal clients)
USER_NETS = (("10.10.0.0/16", 50), ("10.20.0.0/16", 25), ("172.16.0.0/20", 10), ("192.168.100.0/24", 5))
SERVER_NETS = (("10.1.0.0/22", 8), ("10.2.0.0/24", 2))
DMZ_NET = "172.31.0.0/24"
VPN_POOL = "10.250.0.0/20"
# The company's AWS VPCs (one per environment): cloud sources' instances and interfaces live here.
CLOUD_VPC_NETS = (("10.100.0.0/16", 60), ("10.101.0.0/16", 30), ("10.102.0.0/16", 10))
NAT_POOL = "198.18.0.0/28"           # the company's own public egress addresses (benchmark range: content only)
# First octets of the public unicast space drawn for outside peers (no private, multicast, reserved
# or documentation ranges: 192.0.2/24, 198.51.100/24 and 203.0.113/24 are left to attack scenarios).
PUBLIC_FIRST_OCTETS = tuple(o for o in range(1, 224) if o not in (0, 10, 100, 127, 169, 172, 192, 198, 203))

# (protocol, port, application name as firewalls call it, weight)
SERVICES: tuple[tuple[str, int, str, int], ...] = (
    ("tcp", 443, "ssl", 46), ("tcp", 80, "web-browsing", 14), ("udp", 53, "dns", 18), ("udp", 123, "ntp", 3),
    ("tcp", 22, "ssh", 2), ("tcp", 25, "smtp", 2), ("tcp", 993, "imaps", 1), ("tcp", 3389, "ms-rdp", 1),
    ("tcp", 445, "ms-ds-smb", 3), ("udp", 443, "quic", 5), ("tcp", 8080, "web-browsing", 2),
    ("tcp", 3306, "mysql", 1), ("tcp", 389, "ldap", 1), ("udp", 514, "syslog", 1),
)
_SERVICE_WEIGHTS = tuple(itertools.accumulate(s[3] for s in SERVICES))     # cumulative
DOMAINS = (
    "microsoft.com", "office365.com", "google.com", "gstatic.com", "amazonaws.com", "cloudflare.com",
    "akamaiedge.net", "github.com", "slack.com", "zoom.us", "salesforce.com", "apple.com", "okta.com",
    "windowsupdate.com", "linkedin.com", "dropbox.com", "atlassian.net", "ubuntu.com", "docker.io",
)
COMPANY_DOMAIN = "corp.example.com"


@cache
def _net(cidr: str) -> tuple[int, int]:
    """A network as (first address, size): parsed once, not per message."""
    net = ipaddress.IPv4Network(cidr)
    return int(net.network_address), net.num_addresses


@cache
def _table(nets: tuple[tuple[str, int], ...]) -> tuple[list[str], list[int]]:
    """Names and cumulative weights (the same draws as plain weights, without summing per message)."""
    return [n for n, _ in nets], list(itertools.accumulate(w for _, w in nets))


def _pick_net(rng: random.Random, nets: tuple[tuple[str, int], ...]) -> str:
    names, cumulative = _table(nets)
    return rng.choices(names, cum_weights=cumulative)[0]


def _host_in(rng: random.Random, cidr: str) -> str:
    first, size = _net(cidr)
    a = first + rng.randint(1, size - 2)
    return f"{a >> 24}.{a >> 16 & 255}.{a >> 8 & 255}.{a & 255}"


def internal_client(rng: random.Random) -> str:
    return _host_in(rng, _pick_net(rng, USER_NETS))


def internal_server(rng: random.Random) -> str:
    return _host_in(rng, _pick_net(rng, SERVER_NETS))


def dmz_server(rng: random.Random) -> str:
    return _host_in(rng, DMZ_NET)


def vpn_address(rng: random.Random) -> str:
    return _host_in(rng, VPN_POOL)


def cloud_address(rng: random.Random) -> str:
    return _host_in(rng, _pick_net(rng, CLOUD_VPC_NETS))


def nat_address(rng: random.Random) -> str:
    return _host_in(rng, NAT_POOL)


def external(rng: random.Random) -> str:
    return f"{rng.choice(PUBLIC_FIRST_OCTETS)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def ephemeral_port(rng: random.Random) -> int:
    return rng.randint(49152, 65535)


@dataclass(frozen=True)
class Service:
    protocol: str        # 'tcp' | 'udp'
    port: int
    app: str


def service(rng: random.Random) -> Service:
    proto, port, app, _ = rng.choices(SERVICES, cum_weights=_SERVICE_WEIGHTS)[0]
    return Service(proto, port, app)


def domain(rng: random.Random) -> str:
    base = rng.choice(DOMAINS)
    return base if rng.random() < 0.3 else f"{rng.choice(('www', 'api', 'cdn', 'login', 'static'))}.{base}"


def mac(rng: random.Random, sep: str = ":") -> str:
    return sep.join(f"{rng.randint(0, 255):02x}" for _ in range(6))
