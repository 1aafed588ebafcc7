"""Message templates and value pools: what a production syslog stream looks like.

A template is one kind of line a real daemon writes (sshd accepting a key, nginx serving a
request, the kernel's firewall dropping a packet...). Its weight says how common it is: a few
sources (web access logs, firewall drops, sshd, cron, systemd) dominate as they do on real fleets.
Each source runs only on hosts of the roles that would run it (nginx on web hosts, postfix on mail
relays, named on DNS servers); sources that every Linux box has run everywhere.

Placeholders are ``{name}`` fields filled by the generator functions in ``FIELDS``; a name used
twice in one template gets the same value twice (``{user}`` in an sshd line and its pam line).
This module is pure data plus pure functions of a ``random.Random``; it is only used while the
pool is built, never per sent message.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

# RFC 3164 / RFC 5424 facility and severity codes.
FACILITIES: dict[str, int] = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
    "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "console": 14,
    "solaris-cron": 15, "local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20,
    "local5": 21, "local6": 22, "local7": 23,
}
SEVERITIES: dict[str, int] = {
    "emerg": 0, "alert": 1, "crit": 2, "err": 3, "warning": 4, "notice": 5, "info": 6, "debug": 7,
}

ALL_ROLES = ("web", "app", "db", "mail", "dns", "fw", "k8s", "bastion", "ci")
# Share of simulated hosts per role (a mid-size fleet).
ROLE_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("web", 22), ("app", 24), ("db", 8), ("mail", 4), ("dns", 4), ("fw", 4), ("k8s", 24),
    ("bastion", 3), ("ci", 7),
)


@dataclass(frozen=True)
class Template:
    source: str           # what a SIEM would call the log source
    tag: str              # RFC 3164 TAG: alphanumeric plus -_./, <= 32 chars
    facility: int
    severity: int
    weight: float         # relative frequency in the stream
    text: str             # MSG with {field} placeholders
    roles: tuple[str, ...] = ALL_ROLES
    pid: bool = True      # TAG[PID]: (False for the kernel, which logs as "kernel:")


# --- value pools -------------------------------------------------------------------------------

USERS = (
    "root", "admin", "ubuntu", "deploy", "jenkins", "ansible", "alice", "bob", "carol", "dave",
    "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "oscar", "peggy", "trent",
    "victor", "walter", "svc-backup", "svc-monitor", "postgres", "www-data", "git", "nagios",
)
BAD_USERS = ("test", "oracle", "guest", "user", "pi", "ftpuser", "support", "administrator", "mysql", "hadoop")
HTTP_METHODS = (("GET", 80), ("POST", 14), ("PUT", 2), ("HEAD", 2), ("DELETE", 1), ("OPTIONS", 1))
HTTP_STATUS = ((200, 78), (304, 6), (301, 3), (302, 3), (404, 5), (401, 1), (403, 1), (500, 1), (502, 1), (503, 1))
URL_PATHS = (
    "/", "/index.html", "/login", "/logout", "/api/v1/users", "/api/v1/orders", "/api/v1/orders/{n}",
    "/api/v2/search?q={word}", "/static/js/app.{hex8}.js", "/static/css/main.{hex8}.css",
    "/images/logo.png", "/favicon.ico", "/health", "/metrics", "/cart", "/checkout",
    "/products/{n}", "/account/settings", "/wp-login.php", "/.env", "/robots.txt",
)
WORDS = ("shoes", "laptop", "invoice", "report", "kubernetes", "backup", "coffee", "ticket", "gift")
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "curl/8.5.0", "python-requests/2.31.0", "Go-http-client/1.1", "kube-probe/1.29",
    "Prometheus/2.51.0", "Googlebot/2.1 (+http://www.google.com/bot.html)",
)
REFERERS = ("-", "-", "-", "https://www.example.com/", "https://shop.example.com/cart", "https://www.google.com/")
DOMAINS = (
    "example.com", "example.org", "api.example.net", "cdn.example.com", "mail.example.com",
    "updates.vendor.example", "login.partner.example", "time.example.org", "repo.example.net",
)
MAIL_DOMAINS = ("example.com", "example.org", "corp.example.net", "partner.example")
SYSTEMD_UNITS = (
    "apt-daily.service", "logrotate.service", "man-db.service", "fstrim.service",
    "certbot.service", "sysstat-collect.service", "systemd-tmpfiles-clean.service",
    "docker.service", "containerd.service", "kubelet.service", "node-exporter.service",
)
SUDO_COMMANDS = (
    "/usr/bin/systemctl restart nginx", "/usr/bin/apt-get update", "/usr/bin/journalctl -u kubelet",
    "/bin/cat /var/log/auth.log", "/usr/bin/docker ps", "/usr/sbin/iptables -L -n",
    "/usr/bin/tail -f /var/log/syslog", "/bin/systemctl status postgresql",
)
CRON_COMMANDS = (
    "command -v debian-sa1 > /dev/null && debian-sa1 1 1", "/usr/local/bin/backup.sh --incremental",
    "cd / && run-parts --report /etc/cron.hourly", "/usr/lib/php/sessionclean",
    "[ -x /usr/bin/certbot ] && certbot -q renew", "/opt/monitor/check_disk.sh >/dev/null 2>&1",
)
IFACES = ("eth0", "eth1", "ens3", "ens5", "bond0")
NGINX_ERRORS = (
    'open() "/usr/share/nginx/html{path}" failed (2: No such file or directory)',
    "upstream timed out (110: Connection timed out) while reading response header from upstream",
    "connect() failed (111: Connection refused) while connecting to upstream",
    "client intended to send too large body: {bytes} bytes",
    "limiting requests, excess: 20.{n3} by zone \"api\"",
)
DNS_TYPES = (("A", 60), ("AAAA", 20), ("MX", 4), ("TXT", 5), ("PTR", 8), ("SRV", 3))
PROTOS = (("TCP", 75), ("UDP", 22), ("ICMP", 3))
DEST_PORTS = (22, 23, 25, 53, 80, 110, 123, 143, 443, 445, 993, 1433, 3306, 3389, 5432, 5900, 6379, 8080, 8443, 9200)
AUDIT_TYPES = ("USER_LOGIN", "USER_AUTH", "USER_START", "USER_END", "CRED_ACQ", "USER_CMD")
PUBLIC_FIRST_OCTETS = (23, 31, 45, 52, 62, 77, 80, 89, 91, 103, 104, 109, 141, 151, 176, 185, 193, 195, 203, 212)


def _weighted(pairs: tuple[tuple[object, int], ...]) -> tuple[list[object], list[int]]:
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _pick(rng: random.Random, pairs: tuple[tuple[object, int], ...]) -> object:
    values, weights = _weighted(pairs)
    return rng.choices(values, weights)[0]


def _ip_ext(rng: random.Random) -> str:
    return f"{rng.choice(PUBLIC_FIRST_OCTETS)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _ip_int(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return f"10.{rng.randrange(8)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    return f"192.168.{rng.randrange(16)}.{rng.randrange(1, 255)}"


def _ip_any(rng: random.Random) -> str:
    return _ip_ext(rng) if rng.random() < 0.6 else _ip_int(rng)


def _url_path(rng: random.Random) -> str:
    path = rng.choice(URL_PATHS)
    return path.format(n=rng.randrange(1, 99999), word=rng.choice(WORDS), hex8=f"{rng.getrandbits(32):08x}")


def _mac(rng: random.Random) -> str:
    return ":".join(f"{rng.randrange(256):02x}" for _ in range(6))


def _fw_mac(rng: random.Random) -> str:
    return f"{_mac(rng)}:{_mac(rng)}:08:00"


def _bytes_body(rng: random.Random) -> str:
    return str(int(rng.lognormvariate(8.0, 1.6)) % 5_000_000)


def _nginx_error(rng: random.Random) -> str:
    text = rng.choice(NGINX_ERRORS)
    return text.format(path=_url_path(rng).split("?")[0], bytes=rng.randrange(10**6, 10**8), n3=rng.randrange(1000))


# A timestamp in a message's text is a placeholder of its width, turned into a site the pool rewrites
# every second (render.render_events, as a user template's {timestamp}); PLACEHOLDER is never text.
PLACEHOLDER = "\x7f"
TIME_LOCAL = (PLACEHOLDER + "L" + PLACEHOLDER * 24)      # nginx's [time_local]: formats.stamp_clf, 26 bytes
FIELDS: dict[str, Callable[[random.Random], str]] = {
    "time_local": lambda r: TIME_LOCAL,
    "user": lambda r: r.choice(USERS),
    "bad_user": lambda r: r.choice(BAD_USERS),
    "ip_ext": _ip_ext,
    "ip_int": _ip_int,
    "ip_any": _ip_any,
    "ip_dst": _ip_int,
    "sport": lambda r: str(r.randrange(1024, 65536)),
    "dport": lambda r: str(r.choice(DEST_PORTS)),
    "uid": lambda r: str(r.randrange(1000, 1100)),
    "session": lambda r: str(r.randrange(1, 40000)),
    "fingerprint": lambda r: "".join(r.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(43)),
    "method": lambda r: str(_pick(r, HTTP_METHODS)),
    "url": _url_path,
    "status": lambda r: str(_pick(r, HTTP_STATUS)),
    "bytes": _bytes_body,
    "ua": lambda r: r.choice(USER_AGENTS),
    "referer": lambda r: r.choice(REFERERS),
    "rtime": lambda r: f"{r.expovariate(12):.3f}",
    "domain": lambda r: r.choice(DOMAINS),
    "qname": lambda r: f"{r.choice(('www', 'api', 'mail', 'cdn', 'auth', 'db', 'ntp'))}.{r.choice(DOMAINS)}",
    "qtype": lambda r: str(_pick(r, DNS_TYPES)),
    "qid": lambda r: f"{r.getrandbits(40):010X}",
    "mail_from": lambda r: f"{r.choice(USERS)}@{r.choice(MAIL_DOMAINS)}",
    "mail_to": lambda r: f"{r.choice(USERS + BAD_USERS)}@{r.choice(MAIL_DOMAINS)}",
    "msize": lambda r: str(r.randrange(900, 250000)),
    "delay": lambda r: f"{r.expovariate(2):.2f}",
    "unit": lambda r: r.choice(SYSTEMD_UNITS),
    "sudo_cmd": lambda r: r.choice(SUDO_COMMANDS),
    "cron_cmd": lambda r: r.choice(CRON_COMMANDS),
    "tty": lambda r: f"pts/{r.randrange(8)}",
    "iface": lambda r: r.choice(IFACES),
    "fw_mac": _fw_mac,
    "mac": _mac,
    "proto": lambda r: str(_pick(r, PROTOS)),
    "ttl": lambda r: str(r.choice((47, 52, 54, 58, 61, 63, 64, 116, 118, 128, 242))),
    "pktlen": lambda r: str(r.choice((40, 44, 52, 60, 64, 76, 1500))),
    "ipid": lambda r: str(r.randrange(65536)),
    "window": lambda r: str(r.choice((1024, 14600, 29200, 64240, 65535))),
    "lease": lambda r: str(r.choice((600, 1800, 3600, 43200, 86400))),
    "audit_id": lambda r: f"{r.randrange(1_700_000_000, 1_800_000_000)}.{r.randrange(1000):03d}:{r.randrange(10**6)}",
    "audit_type": lambda r: r.choice(AUDIT_TYPES),
    "audit_res": lambda r: "success" if r.random() < 0.93 else "failed",
    "nginx_error": _nginx_error,
    "conn": lambda r: str(r.randrange(1, 10**7)),
    "db_ms": lambda r: f"{r.lognormvariate(5.0, 1.2):.3f}",
    "db_name": lambda r: r.choice(("orders", "users", "billing", "inventory", "analytics")),
    "n3": lambda r: str(r.randrange(1000)),
    "kbytes": lambda r: str(r.randrange(10_000, 4_000_000)),
    "ntp_off": lambda r: f"{r.gauss(0, 0.004):+.6f}",
    "pod": lambda r: f"{r.choice(('checkout', 'cart', 'search', 'auth', 'gateway'))}-{r.getrandbits(32):08x}-{r.getrandbits(20):05x}",
}

_F, _S = FACILITIES, SEVERITIES
T = Template
TEMPLATES: tuple[Template, ...] = (
    # web tier: nginx access (combined format) dominates production syslog volume
    T("nginx-access", "nginx", _F["local7"], _S["info"], 300, '{ip_any} - - [{time_local}] "{method} {url} HTTP/1.1" {status} {bytes} "{referer}" "{ua}" rt={rtime}', ("web",)),
    T("nginx-access", "nginx", _F["local7"], _S["info"], 60, '{ip_int} - {user} [{time_local}] "{method} {url} HTTP/2.0" {status} {bytes} "-" "{ua}" rt={rtime}', ("web", "k8s")),
    T("nginx-error", "nginx", _F["local7"], _S["err"], 12, "[error] {n3}#0: *{conn} {nginx_error}, client: {ip_any}, server: {domain}", ("web",)),
    T("nginx-error", "nginx", _F["local7"], _S["warning"], 6, "[warn] {n3}#0: *{conn} an upstream response is buffered to a temporary file /var/cache/nginx/proxy_temp/{n3}/{conn} while reading upstream, client: {ip_any}", ("web",)),
    # firewall: iptables / ufw through the kernel
    T("firewall", "kernel", _F["kern"], _S["warning"], 110, "[UFW BLOCK] IN={iface} OUT= MAC={fw_mac} SRC={ip_ext} DST={ip_dst} LEN={pktlen} TOS=0x00 PREC=0x00 TTL={ttl} ID={ipid} PROTO={proto} SPT={sport} DPT={dport} WINDOW={window} RES=0x00 SYN URGP=0", pid=False),
    T("firewall", "kernel", _F["kern"], _S["warning"], 60, "IPTABLES-DROP: IN={iface} OUT= MAC={fw_mac} SRC={ip_ext} DST={ip_dst} LEN={pktlen} TTL={ttl} ID={ipid} PROTO={proto} SPT={sport} DPT={dport}", ("fw", "bastion", "web"), pid=False),
    T("firewall", "kernel", _F["kern"], _S["info"], 20, "[UFW ALLOW] IN={iface} OUT= MAC={fw_mac} SRC={ip_int} DST={ip_dst} LEN={pktlen} TTL={ttl} ID={ipid} PROTO=TCP SPT={sport} DPT={dport} WINDOW={window} SYN URGP=0", pid=False),
    # sshd and PAM
    T("sshd", "sshd", _F["auth"], _S["info"], 30, "Accepted publickey for {user} from {ip_int} port {sport} ssh2: ED25519 SHA256:{fingerprint}"),
    T("sshd", "sshd", _F["auth"], _S["info"], 10, "Accepted password for {user} from {ip_int} port {sport} ssh2"),
    T("sshd", "sshd", _F["auth"], _S["info"], 30, "Failed password for invalid user {bad_user} from {ip_ext} port {sport} ssh2"),
    T("sshd", "sshd", _F["auth"], _S["info"], 14, "Failed password for {user} from {ip_ext} port {sport} ssh2"),
    T("sshd", "sshd", _F["auth"], _S["info"], 16, "Invalid user {bad_user} from {ip_ext} port {sport}"),
    T("sshd", "sshd", _F["auth"], _S["info"], 22, "Disconnected from user {user} {ip_int} port {sport}"),
    T("sshd", "sshd", _F["auth"], _S["info"], 10, "Received disconnect from {ip_ext} port {sport}:11: Bye Bye [preauth]"),
    T("sshd", "sshd", _F["authpriv"], _S["info"], 24, "pam_unix(sshd:session): session opened for user {user}(uid={uid}) by (uid=0)"),
    T("sshd", "sshd", _F["authpriv"], _S["info"], 20, "pam_unix(sshd:session): session closed for user {user}"),
    # sudo / su
    T("sudo", "sudo", _F["authpriv"], _S["notice"], 18, "{user} : TTY={tty} ; PWD=/home/{user} ; USER=root ; COMMAND={sudo_cmd}"),
    T("sudo", "sudo", _F["authpriv"], _S["alert"], 3, "{user} : 3 incorrect password attempts ; TTY={tty} ; PWD=/home/{user} ; USER=root ; COMMAND={sudo_cmd}"),
    T("sudo", "sudo", _F["authpriv"], _S["info"], 12, "pam_unix(sudo:session): session opened for user root(uid=0) by {user}(uid={uid})"),
    T("su", "su", _F["authpriv"], _S["notice"], 3, "(to root) {user} on {tty}"),
    # cron
    T("cron", "CRON", _F["cron"], _S["info"], 55, "({user}) CMD ({cron_cmd})"),
    T("cron", "CRON", _F["authpriv"], _S["info"], 25, "pam_unix(cron:session): session opened for user {user}(uid={uid}) by (uid=0)"),
    T("cron", "CRON", _F["authpriv"], _S["info"], 25, "pam_unix(cron:session): session closed for user {user}"),
    # systemd
    T("systemd", "systemd", _F["daemon"], _S["info"], 20, "Starting {unit}..."),
    T("systemd", "systemd", _F["daemon"], _S["info"], 20, "Finished {unit}."),
    T("systemd", "systemd", _F["daemon"], _S["info"], 14, "{unit}: Deactivated successfully."),
    T("systemd", "systemd", _F["daemon"], _S["err"], 2, "{unit}: Main process exited, code=exited, status=1/FAILURE"),
    T("systemd-logind", "systemd-logind", _F["auth"], _S["info"], 8, "New session {session} of user {user}."),
    T("systemd-logind", "systemd-logind", _F["auth"], _S["info"], 7, "Removed session {session}."),
    # mail relays
    T("postfix", "postfix/smtpd", _F["mail"], _S["info"], 10, "connect from unknown[{ip_ext}]", ("mail",)),
    T("postfix", "postfix/smtpd", _F["mail"], _S["info"], 8, "{qid}: client=unknown[{ip_ext}]", ("mail",)),
    T("postfix", "postfix/qmgr", _F["mail"], _S["info"], 8, "{qid}: from=<{mail_from}>, size={msize}, nrcpt=1 (queue active)", ("mail",)),
    T("postfix", "postfix/smtp", _F["mail"], _S["info"], 8, "{qid}: to=<{mail_to}>, relay=mx.{domain}[{ip_ext}]:25, delay={delay}, delays=0.1/0/0.3/0.2, dsn=2.0.0, status=sent (250 2.0.0 OK)", ("mail",)),
    T("postfix", "postfix/smtpd", _F["mail"], _S["notice"], 4, "NOQUEUE: reject: RCPT from unknown[{ip_ext}]: 554 5.7.1 <{mail_to}>: Relay access denied; from=<{mail_from}> to=<{mail_to}> proto=ESMTP", ("mail",)),
    # DNS
    T("named", "named", _F["daemon"], _S["info"], 30, "client @0x7f{n3}a{n3} {ip_int}#{sport} ({qname}): query: {qname} IN {qtype} +E(0)K ({ip_dst})", ("dns",)),
    T("named", "named", _F["daemon"], _S["notice"], 3, "client @0x7f{n3}b{n3} {ip_ext}#{sport} ({qname}): query (cache) '{qname}/{qtype}/IN' denied", ("dns",)),
    # DHCP client, time sync
    T("dhclient", "dhclient", _F["daemon"], _S["info"], 4, "DHCPREQUEST for {ip_int} on {iface} to {ip_int} port 67"),
    T("dhclient", "dhclient", _F["daemon"], _S["info"], 4, "bound to {ip_int} -- renewal in {lease} seconds."),
    T("chronyd", "chronyd", _F["daemon"], _S["info"], 3, "Selected source {ip_ext} (time.{domain})"),
    T("chronyd", "chronyd", _F["daemon"], _S["warning"], 1, "System clock wrong by {ntp_off} seconds"),
    # audit trail
    T("auditd", "audit", _F["authpriv"], _S["notice"], 14, "type={audit_type} msg=audit({audit_id}): pid={conn} uid=0 auid={uid} ses={session} msg='op=PAM:session_open acct=\"{user}\" exe=\"/usr/sbin/sshd\" hostname={ip_int} addr={ip_int} terminal=ssh res={audit_res}'"),
    # databases and containers
    T("postgres", "postgres", _F["local0"], _S["info"], 10, "LOG:  duration: {db_ms} ms  statement: SELECT * FROM {db_name} WHERE id = {conn}", ("db",)),
    T("postgres", "postgres", _F["local0"], _S["err"], 2, "FATAL:  password authentication failed for user \"{bad_user}\"", ("db",)),
    T("kubelet", "kubelet", _F["daemon"], _S["info"], 12, "kuberuntime_manager.go:1050] \"Creating container in pod\" pod=\"default/{pod}\"", ("k8s",)),
    T("kubelet", "kubelet", _F["daemon"], _S["err"], 3, "pod_workers.go:1298] \"Error syncing pod, skipping\" err=\"failed to \\\"StartContainer\\\" with CrashLoopBackOff\" pod=\"default/{pod}\"", ("k8s",)),
    T("kernel", "kernel", _F["kern"], _S["err"], 1, "Out of memory: Killed process {conn} (java) total-vm:{kbytes}kB, anon-rss:{kbytes}kB, file-rss:0kB, shmem-rss:0kB", ("app", "k8s", "db"), pid=False),
    T("kernel", "kernel", _F["kern"], _S["info"], 2, "{iface}: renamed from veth{n3}", ("k8s",), pid=False),
)
del T


def sources() -> frozenset[str]:
    return frozenset(t.source for t in TEMPLATES)
