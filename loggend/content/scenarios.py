"""Attack scenarios: named, parameterised event sequences hidden in the background traffic.

A scenario (``ssh-bruteforce``, ``password-spray``, ``port-scan``, ``priv-escalation``, ``beacon``,
``exfiltration``) is asked for as ``NAME[:KEY=VALUE,...]`` (``--scenario``, ``scenarios:``,
``loggend ctl inject NAME KEY=VALUE...``). Every one takes the common keys ``at`` (seconds from the
start of the run), ``every`` (repeat that often; 0: once), ``source`` (the attacker's address, in
the documentation range 203.0.113.0/24 by default: log content only, never a target) and
``target_host`` (the device or host attacked; by default one of the background's), and its own
keys (``KEYS`` of each), each with its bounds.

Each occurrence is an *instance* (``ssh-bruteforce-1``, ``ssh-bruteforce-2``...): a list of
``Step``\\ s, each one message at an offset from the instance's start, written by the vendor
source whose wire form it takes, with the same device identities as the background (the run's
seed gives the same host names, serials, NAT pools and domain SIDs as ``loggend.content.mix``
and the catalogue): sshd lines of the catalogue's Linux fleet, Windows 4625/4728/4732/4624/4672
through Snare or NXLog, the mix's firewall (Cisco ASA, PAN-OS, FortiGate or iptables) for scans
and uploads, Squid or Zeek DNS for a beacon. A step is a draft (``loggend.content.model``); the
injector renders it at its send time with its own stream and sequence number
(``loggend.control.injector``).

Pure functions of the request, the background and the instance number; nothing here sends.
"""

from __future__ import annotations

import ipaddress
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache

from loggend.content import cisco, flows, fortinet, iptables, linux, netplan, paloalto, web, windows
from loggend.content.drafts import Renderer, text
from loggend.content.flows import Flow
from loggend.content.hostkit import EPOCH, JSON_PROOF_PARTS, syslog3164
from loggend.content.mix import identity_seed
from loggend.content.model import SEQ, STREAM, Draft, Identity, Source
from loggend.engine import catalog
from loggend.engine.formats import Event, make_format
from loggend.engine.render import Fleet, fit, stable_pid
from loggend.errors import ConfigError

ATTACKER_NET = "203.0.113.0/24"          # RFC 5737 TEST-NET-3: the default attacker (log content only)
BEACON_DOMAIN = "cdn-telemetry.example.net"   # RFC 2606: never a real domain
MAX_OFFSET = 7 * 86_400.0                # at, every: at most a week
MAX_EVENTS = 100_000                     # messages one instance may send
NAME = re.compile(r"[a-z][a-z0-9-]*\Z")
KEY = re.compile(r"[a-z_]+\Z")
HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,253}\Z")
FIREWALLS = ("iptables", "cisco-asa", "paloalto", "fortigate")     # the port-scan and exfiltration devices
UPLOAD_FIREWALLS = ("cisco-asa", "paloalto", "fortigate")          # iptables' LOG lines carry no byte counts
SSH_USERS = ("root", "admin", "ubuntu", "oracle", "test", "git", "postgres", "user", "pi", "support")
SSHD_FACILITY, SSHD_SEVERITY = 4, 6      # auth.info, as the catalogue's sshd lines


# --- keys ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Key:
    """One key a scenario takes: its type, bounds, default and one line of docs."""

    name: str
    kind: str                            # int | seconds | percent | bool | address | host | word | choice
    default: object                      # None: chosen from the background when the instance is made
    doc: str
    low: float = 0
    high: float = 0
    choices: tuple[str, ...] = ()

    def allowed(self) -> str:
        if self.kind in ("int", "seconds", "percent"):
            unit = " seconds" if self.kind == "seconds" else " %" if self.kind == "percent" else ""
            return f"a number from {self.low:g} to {self.high:g}{unit}"
        if self.kind == "bool":
            return "true or false"
        if self.kind == "address":
            return "an IPv4 address"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        return "a name of letters, digits, '.', '_' and '-'"

    def parse(self, label: str, text: str) -> object:
        bad = ConfigError(label, text, self.allowed())
        if self.kind in ("int", "seconds", "percent"):
            try:
                if not text.isascii():
                    raise ValueError(text)                 # digits 0-9 only: int() takes a fullwidth 5
                value = float(text) if self.kind != "int" else int(text, 10)
            except ValueError:
                raise bad from None
            if not self.low <= value <= self.high or value != value:
                raise bad
            return value
        if self.kind == "bool":
            if text.lower() not in ("true", "false", "yes", "no", "1", "0"):
                raise bad
            return text.lower() in ("true", "yes", "1")
        if self.kind == "address":
            try:
                return str(ipaddress.IPv4Address(text))
            except ValueError:
                raise bad from None
        if self.kind == "choice":
            if text not in self.choices:
                raise bad
            return text
        if not HOST.match(text):
            raise bad
        return text


COMMON = (
    Key("at", "seconds", 0.0, "seconds from the start of the run (or of the trial) to the first instance",
        0, MAX_OFFSET),
    Key("every", "seconds", 0.0, "start another instance this often (0: once)", 0, MAX_OFFSET),
    Key("source", "address", None, f"the attacker's address (default: one in {ATTACKER_NET}; log content only)"),
    Key("target_host", "host", None, "the host or device attacked (default: one of the background's)"),
)


# --- what a scenario makes ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One message of an instance: ``offset`` seconds after its start, in ``source``'s form ``form``."""

    offset: float
    source: str
    form: str
    draft: Draft


@dataclass(frozen=True)
class Background:
    """What the scenarios must look like: the run's seed, catalogue fleet, mix and form."""

    seed: int = 1
    hosts: int = 1000                    # the catalogue's simulated hosts (MessageSpec.hosts)
    mix: tuple[str, ...] = ()            # the mix's sources; () = the catalogue alone
    form: str = ""                       # the run's --format ("" : each source's own)
    engine_format: str = "rfc3164"       # the catalogue's format when it is the background

    def identity(self, source: Source) -> Identity:
        return _identity(source.name, self.seed)

    def form_of(self, source: Source) -> str:
        if self.form and source.form(self.form) is not None:
            return self.form
        return source.forms[0].name

    def firewall(self, allowed: tuple[str, ...], fallback: str) -> str:
        """The mix's first firewall among ``allowed``, else ``fallback``."""
        return next((name for name in self.mix if name in allowed), fallback)


@cache
def _identity(name: str, seed: int) -> Identity:
    from loggend.content import registry
    source = registry.get(name)
    assert source is not None, name
    return source.identity(random.Random(identity_seed(seed, name)))


@dataclass(frozen=True)
class Params:
    """A request's values, with the defaults filled in for one instance."""

    values: dict[str, object] = field(default_factory=dict)

    def __getitem__(self, key: str) -> object:
        return self.values[key]

    def num(self, key: str) -> float:
        value = self.values[key]
        assert isinstance(value, (int, float))
        return float(value)

    def text(self, key: str) -> str:
        return str(self.values[key])


Builder = Callable[[Params, Background, random.Random], list[Step]]


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str                         # one line: what it is
    sends: str                           # one line: which sources' messages it sends
    keys: tuple[Key, ...]                # its own keys (COMMON come first)
    build: Builder
    default_target: Callable[[Background, random.Random], str]
    target_address: bool = False         # target_host is an IPv4 address (a firewall's or a client's)

    def all_keys(self) -> tuple[Key, ...]:
        return COMMON + self.keys

    def key(self, name: str) -> Key | None:
        return next((k for k in self.all_keys() if k.name == name), None)


@dataclass(frozen=True)
class Request:
    """A scenario asked for, its keys parsed (only those given)."""

    scenario: Scenario
    given: tuple[tuple[str, object], ...]
    text: str                             # as written

    @property
    def name(self) -> str:
        return self.scenario.name

    def get(self, key: str) -> object:
        return dict(self.given).get(key, self.scenario.key(key).default)    # type: ignore[union-attr]

    @property
    def at(self) -> float:
        return float(self.get("at"))      # type: ignore[arg-type]

    @property
    def every(self) -> float:
        return float(self.get("every"))   # type: ignore[arg-type]


@dataclass(frozen=True)
class Instance:
    """One occurrence of a scenario: its id, start (seconds from the run's start) and messages."""

    id: str
    scenario: str
    start: float
    source: str                           # the attacker's address it used
    target: str
    steps: tuple[Step, ...]


# --- parsing ------------------------------------------------------------------------------------------

def names() -> tuple[str, ...]:
    return tuple(SCENARIOS)


def get(name: str) -> Scenario | None:
    return SCENARIOS.get(name)


def _scenario(label: str, name: str) -> Scenario:
    found = SCENARIOS.get(name)
    if found is None:
        raise ConfigError(label, name, "a scenario: " + ", ".join(SCENARIOS))
    return found


def parse_pairs(label: str, scenario: Scenario, pairs: list[str], text: str) -> Request:
    """``KEY=VALUE`` items of ``scenario`` into a request (one-line errors naming the key)."""
    given: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not KEY.match(key):
            raise ConfigError(label, pair, f"KEY=VALUE with a key of {scenario.name}: "
                              + ", ".join(k.name for k in scenario.all_keys()))
        spec = scenario.key(key)
        if spec is None:
            raise ConfigError(f"{label} {scenario.name}", key, "one of its keys: "
                              + ", ".join(k.name for k in scenario.all_keys()))
        if key in given:
            raise ConfigError(f"{label} {scenario.name}", key, "each key once")
        if key == "target_host" and scenario.target_address:
            spec = Key("target_host", "address", None, spec.doc)
        given[key] = spec.parse(f"{label} {scenario.name}:{key}", value.strip())
    if given.get("every", 0.0) and float(given["every"]) < 1:     # type: ignore[arg-type]
        raise ConfigError(f"{label} {scenario.name}:every", given["every"], "0 (once) or at least 1 second")
    return Request(scenario, tuple(given.items()), text)


def parse(label: str, text: object) -> Request:
    """``NAME[:KEY=VALUE,...]`` (``--scenario``, an item of ``scenarios:``)."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(label, text, "NAME[:KEY=VALUE,...] with a scenario: " + ", ".join(SCENARIOS))
    name, _, rest = text.strip().partition(":")
    scenario = _scenario(label, name.strip())
    pairs = [p for p in rest.split(",") if p.strip()] if rest else []
    return parse_pairs(label, scenario, pairs, text.strip())


def parse_all(label: str, items: object) -> tuple[Request, ...]:
    """A list of scenario requests (the config's ``scenarios:``, repeated ``--scenario``)."""
    if items is None:
        return ()
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, (list, tuple)):
        raise ConfigError(label, items, "a list of NAME[:KEY=VALUE,...]")
    return tuple(parse(label, item) for item in items)


# --- instances ----------------------------------------------------------------------------------------

def instance(request: Request, background: Background, number: int) -> Instance:
    """The ``number``-th (from 1) occurrence of ``request``: its keys filled in, its steps made."""
    scenario = request.scenario
    iid = f"{scenario.name}-{number}"
    rng = random.Random(f"scenario:{background.seed}:{request.text}:{number}")
    values = {k.name: k.default for k in scenario.all_keys()}
    values.update(request.given)
    if values["source"] is None:
        values["source"] = _in(rng, ATTACKER_NET)
    if values["target_host"] is None:
        values["target_host"] = scenario.default_target(background, rng)
    params = Params(values)
    steps = tuple(sorted(scenario.build(params, background, rng), key=lambda s: s.offset))
    start = request.at + (number - 1) * request.every
    return Instance(iid, scenario.name, start, params.text("source"), params.text("target_host"), steps)


def instances(request: Request, background: Background, until: float) -> Iterator[Instance]:
    """Every instance of ``request`` that starts before ``until`` seconds (once when ``every`` is 0)."""
    number = 1
    while True:
        start = request.at + (number - 1) * request.every
        if start >= until or (number > 1 and not request.every):
            return
        yield instance(request, background, number)
        number += 1


def _in(rng: random.Random, cidr: str) -> str:
    net = ipaddress.IPv4Network(cidr)
    return str(net.network_address + rng.randint(10, net.num_addresses - 2))


def _spread(count: int, within: float, rng: random.Random) -> list[float]:
    """``count`` offsets over ``within`` seconds, evenly with a little jitter, the first at 0."""
    if count <= 1:
        return [0.0] * count
    gap = within / (count - 1)
    return [0.0] + [min(within, i * gap + rng.uniform(-0.2, 0.2) * gap) for i in range(1, count)]


# --- ssh-bruteforce: the catalogue's sshd lines -------------------------------------------------------------

def _fleet(bg: Background) -> tuple[Fleet, int]:
    """The catalogue's fleet and seed the background speaks for (the mix's linux identity when it has one)."""
    if bg.mix and "linux" in bg.mix:
        seed = int(_identity("linux", bg.seed).extra["seed"][0])
        return Fleet.build(linux.HOSTS, seed), seed
    return Fleet.build(bg.hosts, bg.seed), bg.seed


def _linux_target(bg: Background, rng: random.Random) -> str:
    fleet, _ = _fleet(bg)
    hosts = fleet.eligible(("bastion",))
    return fleet.names[hosts[0]]


def _sshd(bg: Background, host: str, text: str) -> tuple[str, Draft]:
    """One sshd line as the catalogue writes it on ``host`` (its pid, facility, the run's format)."""
    _, seed = _fleet(bg)
    form = bg.form if bg.form in linux.ENGINE_FORMATS else bg.engine_format
    event = Event(pri=SSHD_FACILITY * 8 + SSHD_SEVERITY, host=host, program="sshd",
                  pid=stable_pid(seed, host, "sshd"), text=text, fields={}, source="sshd", event_id="sshd-3",
                  name="Failed password for", placeholders=())
    rendered = fit(make_format(form, True, True), event, 0.0, linux.MAX_LENGTH)
    return form, linux.draft_of(rendered, 0.0, True)


def _ssh_bruteforce(p: Params, bg: Background, rng: random.Random) -> list[Step]:
    host, attacker = p.text("target_host"), p.text("source")
    attempts = int(p.num("attempts"))
    user = p.text("user")
    offsets = _spread(attempts + (1 if p["success"] else 0), p.num("within"), rng)
    steps = []
    for i in range(attempts):
        name = user or rng.choice(SSH_USERS)
        known = name in catalog.USERS
        text = (f"Failed password for {'' if known else 'invalid user '}{name} from {attacker} "
                f"port {netplan.ephemeral_port(rng)} ssh2")
        steps.append(Step(offsets[i], "linux", *_sshd(bg, host, text)))
    if p["success"]:
        name = user or "root"
        text = f"Accepted password for {name} from {attacker} port {netplan.ephemeral_port(rng)} ssh2"
        steps.append(Step(offsets[-1], "linux", *_sshd(bg, host, text)))
    return steps


# --- Windows: password-spray, priv-escalation ---------------------------------------------------------

def _windows(bg: Background, rng: random.Random) -> tuple[windows._Windows, str]:
    source = windows.SOURCES[0]
    form = bg.form_of(source)
    return windows._Windows(bg.identity(source), rng, form), form


def _windows_server(bg: Background, rng: random.Random) -> str:
    return str(_identity("windows-security", bg.seed).extra["servers"][0])


def _short(host: str) -> str:
    return host.split(".", 1)[0]


def _password_spray(p: Params, bg: Background, rng: random.Random) -> list[Step]:
    win, form = _windows(bg, rng)
    host = _short(p.text("target_host"))
    users = list(win.est.users)
    accounts = rng.sample(users, min(int(p.num("accounts")), len(users)))
    while len(accounts) < int(p.num("accounts")):
        accounts.append(f"{rng.choice(windows.FIRST_NAMES)}.{rng.choice(windows.LAST_NAMES)}{len(accounts)}")
    offsets = _spread(len(accounts), p.num("within"), rng)
    _ensure_host(win, host)
    return [Step(at, "windows-security", form, win._failure(user, host, p.text("source")))
            for at, user in zip(offsets, accounts, strict=True)]


def _ensure_host(win: windows._Windows, host: str) -> None:
    """A target outside the domain's hosts gets its own record and Snare counters."""
    est = win.est
    if host not in est.record:
        est.record[host] = win.rng.randint(10**6, 10**8)
        est.snare[host] = win.rng.randint(1, 10**6)
        est.lsass[host] = 4 * win.rng.randint(120, 400)


GROUP_EVENTS = {"Domain Admins": (4728, 512), "Enterprise Admins": (4728, 519), "Administrators": (4732, 544),
                "Remote Desktop Users": (4732, 555)}


def _priv_escalation(p: Params, bg: Background, rng: random.Random) -> list[Step]:
    win, form = _windows(bg, rng)
    est = win.est
    host = _short(p.text("target_host"))
    _ensure_host(win, host)
    user = p.text("user") or rng.choice(est.users[3:])
    group = p.text("group")
    eid, rid = GROUP_EVENTS[group]
    dc = est.dcs[0]
    admin = est.admins[0]
    builtin = eid == 4732
    group_sid = f"S-1-5-32-{rid}" if builtin else f"{est.sid}-{rid}"
    subject = win._subject_user(admin, windows._logon_id(rng))
    added = est.event(dc, eid, {
        "MemberName": f"CN={user},OU=Users,DC=corp,DC=example,DC=com", "MemberSid": est.user_sid(user),
        "TargetUserName": group, "TargetDomainName": "Builtin" if builtin else windows.DOMAIN,
        "TargetSid": group_sid, **subject, "PrivilegeList": "-"})
    logon_id = windows._logon_id(rng)
    logon = est.event(host, 4624, {
        "SubjectUserSid": windows.NULL_SID, "SubjectUserName": "-", "SubjectDomainName": "-", "SubjectLogonId": "0x0",
        "TargetUserSid": est.user_sid(user), "TargetUserName": user, "TargetDomainName": windows.DOMAIN,
        "TargetLogonId": logon_id, "LogonType": "3", "LogonProcessName": "NtLmSsp ",
        "AuthenticationPackageName": "NTLM",
        "WorkstationName": "-", "LogonGuid": "{00000000-0000-0000-0000-000000000000}", "TransmittedServices": "-",
        "LmPackageName": "NTLM V2", "KeyLength": "128", "ProcessId": "0x0", "ProcessName": "-",
        "IpAddress": p.text("source"), "IpPort": str(netplan.ephemeral_port(rng)), "ImpersonationLevel": "%%1833",
        "RestrictedAdminMode": "-", "TargetOutboundUserName": "-", "TargetOutboundDomainName": "-",
        "VirtualAccount": "%%1843", "TargetLinkedLogonId": "0x0", "ElevatedToken": "%%1842"})
    special = est.event(host, 4672, {**win._subject_user(user, logon_id), "PrivilegeList": windows.ADMIN_PRIVILEGES})
    wait = p.num("within")
    return [Step(0.0, "windows-security", form, added), Step(wait, "windows-security", form, logon),
            Step(wait, "windows-security", form, special)]


# --- firewalls: port-scan, exfiltration -------------------------------------------------------------

def _firewall_source(name: str) -> Source:
    from loggend.content import registry
    source = registry.get(name)
    assert source is not None, name
    return source


def _scan_firewall(bg: Background) -> str:
    return bg.firewall(FIREWALLS, "iptables")


def _upload_firewall(bg: Background) -> str:
    return bg.firewall(UPLOAD_FIREWALLS, "fortigate")


def _nat_address(bg: Background, firewall: str) -> str:
    return str(_identity(firewall, bg.seed).extra["nat_pool"][0])


def _flow(src: str, dst: str, dport: int, *, direction: str, sent: int = 0, rcvd: int = 0, duration: int = 0,
          nat_src: str = "", nat_dst: str = "", sport: int = 0, allowed: bool = False, app: str = "not-applicable",
          packets: tuple[int, int] = (1, 0)) -> Flow:
    return Flow(direction, "tcp", app, src, sport, dst, dport, nat_src or src, sport, nat_dst or dst, sent, rcvd,
                packets[0], packets[1], duration, allowed)


def _deny(firewall: str, ident: Identity, form: str, rng: random.Random, f: Flow) -> Draft:
    """One inbound packet denied, as ``firewall`` logs it."""
    if firewall == "iptables":
        macs = ident.extra["macs"]
        text = iptables._line(rng, "FW-DROP-IN", "eth0", "", f"{macs[0]}:{macs[1]}:08:00", f.src, f.dst, "TCP",
                              f.sport, f.dport, rng.choice(iptables.TTLS))
        return (iptables.PRI, flows.STAMP_RFC3164,
                f" {ident.hosts[0]} kernel: [{rng.uniform(86_400, 4_000_000):12.6f}] {text}"
                f"{iptables.PROOF.stream_before}", STREAM, iptables.PROOF.stream_after + iptables.PROOF.seq_before, SEQ)
    if firewall == "cisco-asa":
        asa = cisco._Asa(ident, rng)
        return asa.draft(ident.hosts[0], 4, "106023", f"Deny tcp src outside:{f.src}/{f.sport} dst dmz:{f.dst}/"
                         f"{f.dport} by access-group \"{cisco.ACL['outside']}\" [0x{rng.getrandbits(32):x}, 0x0]")
    if firewall == "paloalto":
        fw = paloalto._Firewall(ident, rng)
        row = paloalto._traffic(fw, 0, f, fw.seqnos[0] + 1)
        return paloalto._native(0, "TRAFFIC", row) if form == "native" else paloalto._cef(0, "TRAFFIC", row)
    level, body, action = fortinet._traffic(rng, f, flows.Counter(rng, 100_000, 9_000_000).next())
    host, serial = ident.hosts[0], ident.extra["serials"][0]
    return (fortinet._native(host, serial, level, body) if form == "native"
            else fortinet._cef(host, serial, level, "traffic:forward", action, body))


def _scan_ports(rng: random.Random, count: int) -> list[int]:
    common = [22, 23, 25, 53, 80, 110, 135, 139, 143, 443, 445, 993, 1433, 3306, 3389, 5432, 5900, 8080, 8443]
    ports = common[:count]
    rest = [p for p in range(1, 65536) if p not in common]
    ports += rng.sample(rest, max(0, count - len(ports)))
    return ports


def _port_scan(p: Params, bg: Background, rng: random.Random) -> list[Step]:
    firewall = p.text("firewall") or _scan_firewall(bg)
    source = _firewall_source(firewall)
    ident, form = bg.identity(source), bg.form_of(source)
    dst = p.text("target_host")
    ports = _scan_ports(rng, int(p.num("ports")))
    offsets = _spread(len(ports), p.num("within"), rng)
    sport = netplan.ephemeral_port(rng)
    server = netplan.dmz_server(rng)              # the scanned address maps to one server: many ports of one address
    return [Step(at, firewall, form, _deny(firewall, ident, form, rng,
                                           _flow(p.text("source"), dst, port, direction="inbound", sport=sport,
                                                 nat_dst=server)))
            for at, port in zip(offsets, ports, strict=True)]


def _upload(firewall: str, ident: Identity, form: str, rng: random.Random, f: Flow) -> list[Draft]:
    """One outbound connection's log (its Built and Teardown on an ASA) with ``f.sent`` bytes up."""
    if firewall == "cisco-asa":
        asa = cisco._Asa(ident, rng)
        host, cid = ident.hosts[0], asa.conns[ident.hosts[0]].next()
        built = asa.draft(host, 6, "302013", f"Built outbound TCP connection {cid} for outside:{f.dst}/{f.dport} "
                          f"({f.dst}/{f.dport}) to inside:{f.src}/{f.sport} ({f.nat_src}/{f.nat_sport})")
        teardown = asa.draft(host, 6, "302014", f"Teardown TCP connection {cid} for outside:{f.dst}/{f.dport} to "
                             f"inside:{f.src}/{f.sport} duration {cisco._hms(f.duration)} bytes {f.bytes} TCP FINs")
        return [built, teardown]
    if firewall == "paloalto":
        fw = paloalto._Firewall(ident, rng)
        row = paloalto._traffic(fw, 0, f, fw.seqnos[0] + 1)
        return [paloalto._native(0, "TRAFFIC", row) if form == "native" else paloalto._cef(0, "TRAFFIC", row)]
    level, body, action = fortinet._traffic(rng, f, flows.Counter(rng, 100_000, 9_000_000).next())
    host, serial = ident.hosts[0], ident.extra["serials"][0]
    return [fortinet._native(host, serial, level, body) if form == "native"
            else fortinet._cef(host, serial, level, "traffic:forward", action, body)]


def _exfiltration(p: Params, bg: Background, rng: random.Random) -> list[Step]:
    firewall = p.text("firewall") or _upload_firewall(bg)
    source = _firewall_source(firewall)
    ident, form = bg.identity(source), bg.form_of(source)
    connections = int(p.num("connections"))
    total = int(p.num("bytes"))
    offsets = _spread(connections, p.num("within"), rng)
    client = p.text("target_host")
    steps = []
    for i, at in enumerate(offsets):
        sent = total // connections + (1 if i < total % connections else 0)
        rcvd = max(4_000, sent // 400)
        sport = netplan.ephemeral_port(rng)
        f = Flow("outbound", "tcp", "ssl", client, sport, p.text("source"), 443,
                 ident.extra["nat_pool"][0], rng.randint(1024, 65535), p.text("source"), sent, rcvd,
                 max(3, sent // 1400), max(3, rcvd // 1000), max(1, int(p.num("within") / connections)), True)
        drafts = _upload(firewall, ident, form, rng, f)
        steps += [Step(at + (f.duration if j else 0), firewall, form, d) for j, d in enumerate(drafts)]
    return steps


def _client(bg: Background, rng: random.Random) -> str:
    return netplan.internal_client(random.Random(f"client:{bg.seed}"))


# --- beacon: proxy or DNS -------------------------------------------------------------------------------

def _beacon(p: Params, bg: Background, rng: random.Random) -> list[Step]:
    period, jitter, count = p.num("period"), p.num("jitter") / 100, int(p.num("count"))
    domain, client = p.text("domain"), p.text("target_host")
    via = p.text("via")
    steps = []
    at = 0.0
    for _ in range(count):
        if via == "dns":
            steps.append(Step(at, "zeek", "native", _zeek_dns(bg, rng, client, domain, p.text("source"))))
        else:
            steps.append(Step(at, "squid", "native", _squid(bg, rng, client, domain, p.text("source"))))
        at += max(0.0, period * (1 + rng.uniform(-jitter, jitter)))
    return steps


def _squid(bg: Background, rng: random.Random, client: str, domain: str, peer: str) -> Draft:
    ident = _identity("squid", bg.seed)
    host, pid = ident.hosts[0], ident.extra["pids"][0]
    return (*syslog3164(web.SQUID_PRI, host, f"squid[{pid}]"), EPOCH,
            f".{rng.randint(0, 999):03d} {rng.randint(90, 400):6d} {client} TCP_TUNNEL/200 {rng.randint(3_800, 4_400)} "
            f"CONNECT {domain}:443 - HIER_DIRECT/{peer} -", " loggen_stream=", STREAM, " loggen_seq=", SEQ)


def _zeek_dns(bg: Background, rng: random.Random, client: str, domain: str, answer: str) -> Draft:
    from loggend.content import ids
    ident = _identity("zeek", bg.seed)
    sensor, resolver = ident.hosts[0], ident.extra["resolvers"][0]
    uid = "C" + "".join(rng.choices(ids.UID_ALPHABET, k=17))
    return (*syslog3164(ids.ZEEK_PRI, sensor, "zeek"), '{"_path":"dns","ts":', EPOCH,
            f'.{rng.randrange(1_000_000):06d},"uid":"{uid}","id.orig_h":"{client}",'
            f'"id.orig_p":{netplan.ephemeral_port(rng)},"id.resp_h":"{resolver}","id.resp_p":53,"proto":"udp",'
            f'"trans_id":{rng.randint(1, 65535)},"rtt":{rng.uniform(0.001, 0.04):.6f},"query":"{domain}",'
            '"qclass":1,"qclass_name":"C_INTERNET","qtype":1,"qtype_name":"A","rcode":0,"rcode_name":"NOERROR",'
            f'"AA":false,"TC":false,"RD":true,"RA":true,"Z":0,"answers":["{answer}"],"TTLs":[60.0],'
            '"rejected":false', *JSON_PROOF_PARTS)


# --- the scenarios --------------------------------------------------------------------------------------

def message(step: Step, now: float, utc: bool, stream: str, seq: int) -> bytes:
    """``step`` as sent at ``now`` by stream ``stream`` with number ``seq`` (its stamps current then)."""
    return text(Renderer(now, utc).rendered(step.draft), stream, seq)


def _scan_target(bg: Background, rng: random.Random) -> str:
    return _nat_address(bg, _scan_firewall(bg))


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("ssh-bruteforce", "failed sshd logins from one outside address against one host, optionally a success",
             "sshd lines of the catalogue's Linux fleet (the run's format)",
             (Key("attempts", "int", 20, "failed logins", 1, 10_000),
              Key("within", "seconds", 60.0, "seconds from the first failure to the last", 0, 86_400),
              Key("success", "bool", False, "end with an accepted login"),
              Key("user", "word", "", "the account tried (default: a common name per attempt)")),
             _ssh_bruteforce, _linux_target),
    Scenario("password-spray", "Windows logon failures (4625) across many accounts from one source",
             "windows-security 4625 (Snare, or NXLog JSON with --format json)",
             (Key("accounts", "int", 30, "accounts tried, one failure each", 1, 10_000),
              Key("within", "seconds", 120.0, "seconds from the first failure to the last", 0, 86_400)),
             _password_spray, _windows_server),
    Scenario("port-scan", "one source probing many ports of one address, every probe denied",
             "the mix's firewall (iptables, cisco-asa, paloalto or fortigate; iptables without a mix)",
             (Key("ports", "int", 100, "ports probed, one denied packet each", 1, 65_535),
              Key("within", "seconds", 30.0, "seconds from the first probe to the last", 0, 86_400),
              Key("firewall", "choice", "", "the device that logs it (default: the mix's firewall)",
                  choices=FIREWALLS)),
             _port_scan, _scan_target, target_address=True),
    Scenario("priv-escalation", "a user added to a privileged group (4728 or 4732), then a logon with "
             "special privileges (4624 + 4672)",
             "windows-security 4728/4732 on a domain controller, 4624 and 4672 on the target",
             (Key("user", "word", "", "the account promoted (default: one of the domain's users)"),
              Key("group", "choice", "Domain Admins", "the group: global groups log 4728, builtin local ones 4732",
                  choices=tuple(GROUP_EVENTS)),
              Key("within", "seconds", 30.0, "seconds from the group change to the privileged logon", 0, 86_400)),
             _priv_escalation, _windows_server),
    Scenario("beacon", "one internal client calling one domain every period, with jitter",
             "squid CONNECT lines (via=proxy) or zeek dns records (via=dns)",
             (Key("domain", "host", BEACON_DOMAIN, "the domain called"),
              Key("period", "seconds", 60.0, "seconds between calls", 1, 86_400),
              Key("jitter", "percent", 10.0, "each gap varies by up to this share of the period", 0, 100),
              Key("count", "int", 10, "calls", 1, MAX_EVENTS),
              Key("via", "choice", "proxy", "proxy (squid) or dns (zeek)", choices=("proxy", "dns"))),
             _beacon, _client, target_address=True),
    Scenario("exfiltration", "a large upload from one internal host to one outside address (source)",
             "the mix's firewall (cisco-asa, paloalto or fortigate; fortigate without a mix)",
             (Key("bytes", "int", 2_000_000_000, "bytes uploaded in all", 1_000_000, 10**13),
              Key("connections", "int", 4, "connections the upload is split into", 1, 1_000),
              Key("within", "seconds", 300.0, "seconds the upload takes", 1, 86_400),
              Key("firewall", "choice", "", "the device that logs it (default: the mix's firewall)",
                  choices=UPLOAD_FIREWALLS)),
             _exfiltration, _client, target_address=True),
)}
