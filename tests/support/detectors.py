"""Real detectors nobody here wrote, unpacked privately: fail2ban 1.0.2 and psad 2.4.6 from Debian.

``fetch_fail2ban`` does ``apt-get download fail2ban`` and ``dpkg -x`` into ``.cache/fail2ban`` (never
installed, its service never started); ``find_fail2ban`` gives its paths: the ``fail2ban-regex``
and ``fail2ban-server``/``fail2ban-client`` scripts, its Python package and its own filters
(``etc/fail2ban/filter.d/sshd.conf``). Everything runs with the package's own code and rules.

``Fail2ban`` runs a private ``fail2ban-server`` (foreground, own socket, pid file, database off,
own log file) with one jail on one log file and no ban action but its own log line, so a test
reads *when* fail2ban banned an address from the server's log: ``Ban 203.0.113.7``.

``fetch_psad`` does ``apt-get download`` of psad and of the Perl libraries it needs that the system
lacks, and ``dpkg -x`` into ``.cache/psad`` (never installed, no service, no iptables rule touched);
``psad_analyze`` runs psad's own analysis mode (``psad -A -m FILE --log-server``) on an iptables log
file with a private config (an override of the package's psad.conf: its own log, run and lib
directories, no e-mail, no whois, ``/bin/false`` for iptables) and reads the scans it reports.
Standard library only.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_FAIL2BAN_ROOT = os.environ.get("FAIL2BAN_ROOT",   # not LOGGEN_*: loggend reads those as settings
                                       str(HERE.parent.parent / ".cache" / "fail2ban"))
DEFAULT_PSAD_ROOT = os.environ.get("PSAD_ROOT", str(HERE.parent.parent / ".cache" / "psad"))
FAIL2BAN_PACKAGE = "fail2ban"
FAIL2BAN_VERSION = "1.0.2"
START_TIMEOUT = 30.0
BAN = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) fail2ban\.actions\s+\[\d+\]: NOTICE\s+\[(\S+)\] "
                 r"Ban (\S+)$", re.M)


@dataclass(frozen=True)
class Fail2banInstall:
    root: Path

    @property
    def python_path(self) -> str:
        found = sorted(glob.glob(str(self.root / "usr/lib/python3/dist-packages")))
        return found[0] if found else ""

    @property
    def config(self) -> Path:
        return self.root / "etc" / "fail2ban"

    def script(self, name: str) -> Path:
        return self.root / "usr" / "bin" / name

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = self.python_path + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        return env

    def command(self, name: str, *args: str) -> list[str]:
        """``name`` (fail2ban-regex, fail2ban-server, fail2ban-client) run by the system's Python 3."""
        return [sys.executable, str(self.script(name)), *args]

    def version(self) -> str:
        out = subprocess.run(self.command("fail2ban-regex", "--version"), capture_output=True, text=True,
                             env=self.env(), timeout=60)
        return (out.stdout + out.stderr).strip()


def find_fail2ban(root: str | None = None) -> Fail2banInstall | None:
    inst = Fail2banInstall(Path(root or DEFAULT_FAIL2BAN_ROOT).resolve())
    if not inst.script("fail2ban-regex").exists() or not (inst.config / "filter.d" / "sshd.conf").exists():
        return None
    return inst


def fail2ban_available(root: str | None = None) -> str | None:
    """None when an unpacked fail2ban runs, else why not (a skip reason)."""
    inst = find_fail2ban(root)
    if inst is None:
        return (f"fail2ban not unpacked in {root or DEFAULT_FAIL2BAN_ROOT} (scripts/system-deps.sh, or "
                "tests.support.detectors.fetch_fail2ban())")
    try:
        version = inst.version()
    except (OSError, subprocess.SubprocessError) as err:
        return f"fail2ban does not run: {err}"
    if FAIL2BAN_VERSION not in version:
        return f"fail2ban {FAIL2BAN_VERSION} expected, found: {version[:80]}"
    return None


def fetch_fail2ban(root: str | None = None, timeout: float = 300) -> Fail2banInstall:
    """apt-get download fail2ban and dpkg -x it into ``root`` (no install, no service)."""
    rootp = Path(root or DEFAULT_FAIL2BAN_ROOT).resolve()
    rootp.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="f2b-debs-") as tmp:
        subprocess.run(["apt-get", "-o", "APT::Sandbox::User=root", "download", FAIL2BAN_PACKAGE], cwd=tmp,
                       check=True, timeout=timeout, stdin=subprocess.DEVNULL, capture_output=True)
        for deb in sorted(glob.glob(os.path.join(tmp, "*.deb"))):
            subprocess.run(["dpkg", "-x", deb, str(rootp)], check=True, timeout=timeout, stdin=subprocess.DEVNULL)
    inst = find_fail2ban(str(rootp))
    if inst is None:
        raise RuntimeError(f"fail2ban unpacked into {rootp} but its scripts or filters are missing")
    return inst


# psad and the Perl libraries it loads (Depends of Debian's psad 2.4.6 that are Perl, and theirs)
PSAD_PACKAGES = ("psad", "libunix-syslog-perl", "libnet-ip-perl", "libdate-calc-perl", "libbit-vector-perl",
                 "libcarp-clan-perl", "libiptables-parse-perl", "libiptables-chainmgr-perl", "libnetaddr-ip-perl")
PSAD_VERSION = "2.4.6"
PSAD_MODULES = ("IPTables::ChainMgr", "NetAddr::IP", "Date::Calc", "Unix::Syslog", "Net::IP")
PSAD_TIMEOUT = 120.0
# The private override of the package's psad.conf (psad -O): only paths and side effects, none of its
# detection settings (danger levels, signatures, auto_dl stay the package's own).
PSAD_OVERRIDE = """\
### written by tests/support/detectors.py: private paths, no e-mail, no firewall command
INSTALL_ROOT                {root};
PSAD_DIR                    {workdir}/log;
PSAD_RUN_DIR                {workdir}/run;
PSAD_FIFO_DIR               {workdir}/lib;
PSAD_LIBS_DIR               {workdir}/no-libs;
ALERTING_METHODS            noemail;
ENABLE_WHOIS_LOOKUPS        N;
IFCFGTYPE                   iproute2;
iptablesCmd                 /bin/false;
ip6tablesCmd                /bin/false;
"""
PSAD_SOURCE = re.compile(r"^SRC:\s+(\S+), DL: (\d+), Dsts: (\d+), Pkts: (\d+),", re.M)
PSAD_DST = re.compile(r"^\s+DST: (\S+)$")
PSAD_PORTS = re.compile(r"^\s+Scanned ports: (\w+) (\S+), Pkts: (\d+),")
PSAD_SIGNATURE = re.compile(r'^\s+Signature match: "(.*)"$')


def _installed(package: str) -> bool:
    done = subprocess.run(["dpkg-query", "-W", "-f", "${Status}", package], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)
    return done.returncode == 0 and done.stdout.endswith(" installed")


@dataclass(frozen=True)
class PsadInstall:
    root: Path

    @property
    def script(self) -> Path:
        return self.root / "usr" / "sbin" / "psad"

    @property
    def config(self) -> Path:
        return self.root / "etc" / "psad" / "psad.conf"

    def env(self) -> dict[str, str]:
        """PERL5LIB with the unpacked libraries (pure Perl and XS) before the system's."""
        paths = [str(self.root / "usr/share/perl5"), *sorted(glob.glob(str(self.root / "usr/lib/*/perl5/*")))]
        env = dict(os.environ)
        env["PERL5LIB"] = os.pathsep.join(paths + ([env["PERL5LIB"]] if env.get("PERL5LIB") else []))
        return env

    def command(self, *args: str) -> list[str]:
        """psad run by the system's perl; as root, or as root of a user namespace of its own when we are
        not (psad refuses to start otherwise; there it has no power over the host's firewall)."""
        perl = [shutil.which("perl") or "/usr/bin/perl", str(self.script), *args]
        return perl if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user", *perl]

    def version(self) -> str:
        out = subprocess.run(self.command("--Version"), capture_output=True, text=True, env=self.env(),
                             stdin=subprocess.DEVNULL, timeout=60)
        return (out.stdout + out.stderr).strip()


def find_psad(root: str | None = None) -> PsadInstall | None:
    inst = PsadInstall(Path(root or DEFAULT_PSAD_ROOT).resolve())
    if not inst.script.exists() or not inst.config.exists() or not (inst.config.parent / "signatures").exists():
        return None
    return inst


def psad_available(root: str | None = None) -> str | None:
    """None when an unpacked psad runs with its Perl libraries, else why not (a skip reason)."""
    inst = find_psad(root)
    if inst is None:
        return (f"psad not unpacked in {root or DEFAULT_PSAD_ROOT} (scripts/system-deps.sh, or "
                "tests.support.detectors.fetch_psad())")
    if not shutil.which("perl"):
        return "psad needs perl, which is not installed"
    try:
        version = inst.version()
        mods = subprocess.run(["perl", *[f"-M{m}" for m in PSAD_MODULES], "-e", "1"], capture_output=True,
                              text=True, env=inst.env(), stdin=subprocess.DEVNULL, timeout=60)
    except (OSError, subprocess.SubprocessError) as err:
        return f"psad does not run: {err}"
    if f"psad v{PSAD_VERSION}" not in version:
        return f"psad {PSAD_VERSION} expected, found: {version[:120]}"
    if mods.returncode != 0:
        return f"psad's Perl libraries do not load: {mods.stderr.strip()[:200]}"
    return None


def fetch_psad(root: str | None = None, timeout: float = 300) -> PsadInstall:
    """apt-get download psad and the Perl libraries of ``PSAD_PACKAGES`` the system lacks (dpkg -s), and
    dpkg -x them into ``root`` (no install, no service, no maintainer script)."""
    rootp = Path(root or DEFAULT_PSAD_ROOT).resolve()
    rootp.mkdir(parents=True, exist_ok=True)
    wanted = [p for p in PSAD_PACKAGES if p == "psad" or not _installed(p)]
    with tempfile.TemporaryDirectory(prefix="psad-debs-") as tmp:
        subprocess.run(["apt-get", "-o", "APT::Sandbox::User=root", "download", *wanted], cwd=tmp,
                       check=True, timeout=timeout, stdin=subprocess.DEVNULL, capture_output=True)
        for deb in sorted(glob.glob(os.path.join(tmp, "*.deb"))):
            subprocess.run(["dpkg", "-x", deb, str(rootp)], check=True, timeout=timeout, stdin=subprocess.DEVNULL)
    inst = find_psad(str(rootp))
    if inst is None:
        raise RuntimeError(f"psad unpacked into {rootp} but its script or config is missing")
    return inst


@dataclass(frozen=True)
class PsadScanner:
    """One source in psad's ``IP Status Detail``: its danger level, packets, per destination the scanned
    ports as psad writes them (``TCP 22-8443``) with their packets, and the names of the signatures it
    matched."""
    address: str
    danger_level: int
    destinations: int
    packets: int
    ports: dict[str, list[tuple[str, str, int]]]
    signatures: list[str]


@dataclass(frozen=True)
class PsadReport:
    output: str                          # what psad printed (its analysis.out)
    scanners: dict[str, PsadScanner]

    @property
    def lines_found(self) -> tuple[int, int]:
        """(iptables log messages, lines) psad says it found in the file."""
        found = re.search(r"Found (\d+) iptables log messages out of (\d+) total lines", self.output)
        return (int(found[1]), int(found[2])) if found else (0, 0)


def parse_psad(output: str) -> PsadReport:
    """psad's analysis report: every ``SRC:`` block of its ``IP Status Detail``."""
    scanners: dict[str, PsadScanner] = {}
    detail = output.split("[+] IP Status Detail:", 1)[-1] if "[+] IP Status Detail:" in output else ""
    current: PsadScanner | None = None
    dst = ""
    for line in detail.splitlines():
        if (src := PSAD_SOURCE.match(line)) is not None:
            current = PsadScanner(src[1], int(src[2]), int(src[3]), int(src[4]), {}, [])
            scanners[current.address] = current
        elif current is not None and (d := PSAD_DST.match(line)) is not None:
            dst = d[1]
            current.ports.setdefault(dst, [])
        elif current is not None and dst and (ports := PSAD_PORTS.match(line)) is not None:
            current.ports[dst].append((ports[1], ports[2], int(ports[3])))
        elif current is not None and (sig := PSAD_SIGNATURE.match(line)) is not None:
            current.signatures.append(sig[1])
    return PsadReport(output, scanners)


def psad_analyze(log: Path, workdir: Path, inst: PsadInstall | None = None) -> PsadReport:
    """psad's own analysis of the iptables log ``log`` (``-A -m LOG``, as on a syslog server:
    ``--log-server``, no whois or reverse DNS), with a private config under ``workdir``."""
    found = inst or find_psad()
    assert found is not None
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    override = workdir / "psad-override.conf"
    override.write_text(PSAD_OVERRIDE.format(root=found.root, workdir=workdir))
    done = subprocess.run(found.command("-c", str(found.config), "-O", str(override), "-A",
                                        "-m", str(Path(log).resolve()),
                                        "--log-server", "--no-whois", "--no-rdns", "--no-netstat"),
                          capture_output=True, text=True, env=found.env(), stdin=subprocess.DEVNULL,
                          timeout=PSAD_TIMEOUT, cwd=workdir)
    if done.returncode != 0 or "Finished --Analyze cycle" not in done.stdout:
        raise RuntimeError(f"psad -A failed ({done.returncode}): {done.stdout[-1000:]} {done.stderr[-1000:]}")
    return parse_psad(done.stdout)


def regex_matches(log: Path, filter_name: str = "sshd", out: str = "row",
                  inst: Fail2banInstall | None = None) -> list[str]:
    """What ``fail2ban-regex -o OUT`` prints for ``log`` with its own ``filter_name`` filter: one line per
    failure it finds (``row``: ``['ADDRESS', TIME, {fields}],``; ``ip``: the address)."""
    inst = inst or find_fail2ban()
    assert inst is not None
    done = subprocess.run(inst.command("fail2ban-regex", "-o", out, "--raw", str(log),
                                       str(inst.config / "filter.d" / f"{filter_name}.conf")),
                         capture_output=True, text=True, env=inst.env(), timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"fail2ban-regex failed ({done.returncode}): {done.stderr[-2000:]}")
    return [line for line in done.stdout.splitlines() if line.strip()]


def syslog_file_receiver(workdir: Path, file_name: str, selector: str, **kw: object) -> object:
    """A private rsyslog (``receivers.RsyslogReceiver``) that also writes ``file_name`` (its ``log_file``)
    with the messages of ``selector`` (``"auth,authpriv.*"``, ``"kern.*"``) in the traditional file format,
    as Debian's rsyslog.conf writes /var/log/auth.log and /var/log/kern.log: what a detector reads on a real
    host."""
    from tests.support import receivers as R

    class FileReceiver(R.RsyslogReceiver):
        @property
        def log_file(self) -> Path:
            return Path(self.workdir) / file_name

        @property
        def auth_log(self) -> Path:
            return self.log_file

        def config_text(self) -> str:
            text = super().config_text()
            rule = (f'  if prifilt("{selector}") then {{ action(type="omfile" file="{self.log_file}" '
                    'template="RSYSLOG_TraditionalFileFormat" asyncWriting="off" flushOnTXEnd="on") }\n}\n')
            head, sep, _ = text.rpartition("}\n")
            return head + rule
    return FileReceiver(workdir, **kw)     # type: ignore[arg-type]


def auth_log_receiver(workdir: Path, **kw: object) -> object:
    """A private rsyslog writing ``auth.log`` (``auth,authpriv.*``, its ``auth_log``): what fail2ban's sshd
    jail reads on a real host."""
    return syslog_file_receiver(workdir, "auth.log", "auth,authpriv.*", **kw)


def kern_log_receiver(workdir: Path, **kw: object) -> object:
    """A private rsyslog writing ``kern.log`` (``kern.*``, its ``log_file``): where a host's netfilter LOG
    lines land, what psad reads."""
    return syslog_file_receiver(workdir, "kern.log", "kern.*", **kw)


JAIL = """\
# a private jail written by tests/support/detectors.py: fail2ban's own sshd filter, no ban action
[DEFAULT]
backend = polling
# nothing looked up off the box: fail2ban resolves its own host name (ignoreself) and names in lines (usedns)
ignoreself = false
usedns = no
[sshd]
enabled = true
filter = sshd
logpath = {log}
maxretry = {maxretry}
findtime = 600
bantime = 600
action =
"""
SERVER_LOCAL = """\
[Definition]
logtarget = {workdir}/fail2ban.log
socket = {workdir}/fail2ban.sock
pidfile = {workdir}/fail2ban.pid
dbfile = :memory:
"""


class Fail2banServer:
    """A private fail2ban-server (foreground, own socket, pid file and log; database in memory) with
    one jail: fail2ban's own sshd filter on ``log``, banning after ``maxretry`` failures with no
    action but its own ``Ban ADDRESS`` log line. Stopped (its process group) on exit."""

    def __init__(self, workdir: Path, log: Path, maxretry: int = 5, inst: Fail2banInstall | None = None) -> None:
        found = inst or find_fail2ban()
        assert found is not None
        self.inst, self.workdir, self.log, self.maxretry = found, Path(workdir), Path(log), maxretry
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def server_log(self) -> Path:
        return self.workdir / "fail2ban.log"

    def __enter__(self) -> Fail2banServer:
        conf = self.workdir / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "filter.d").symlink_to(self.inst.config / "filter.d")
        (conf / "fail2ban.conf").write_text((self.inst.config / "fail2ban.conf").read_text())
        (conf / "fail2ban.local").write_text(SERVER_LOCAL.format(workdir=self.workdir))
        (conf / "jail.conf").write_text(JAIL.format(log=self.log, maxretry=self.maxretry))
        self.log.touch()
        self.proc = subprocess.Popen(self.inst.command("fail2ban-client", "-c", str(conf), "-x", "-f", "start"),
                                     env=self.inst.env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.workdir / "client.err", "wb"), start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while "Jail 'sshd' started" not in (self.server_log.read_text() if self.server_log.exists() else ""):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("fail2ban-server did not start its sshd jail: "
                                   + (self.workdir / "client.err").read_text()[-1000:]
                                   + (self.server_log.read_text()[-1000:] if self.server_log.exists() else ""))
            time.sleep(0.1)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)

    def bans(self) -> list[tuple[float, str]]:
        """(when, address) of every ban the server logged (its log's local time)."""
        text = self.server_log.read_text() if self.server_log.exists() else ""
        return [(banned_at(stamp), address) for stamp, _, address in BAN.findall(text)]


def banned_at(stamp: str) -> float:
    """fail2ban's log time (``2026-12-07 00:40:01,123``, local) in unix seconds."""
    return time.mktime(time.strptime(stamp[:19], "%Y-%m-%d %H:%M:%S")) + int(stamp[20:23]) / 1000


def main(argv: list[str]) -> int:
    """``detectors.py BAN_LOG``: loggen's ``--detect command:``: when fail2ban banned the instance's attacker
    (``LOGGEN_SCENARIO_SOURCE``), in unix seconds, or nothing."""
    log = Path(argv[1])
    source = os.environ.get("LOGGEN_SCENARIO_SOURCE", "")
    text = log.read_text() if log.exists() else ""
    for stamp, _, address in BAN.findall(text):
        if address == source:
            print(f"{banned_at(stamp):.3f}")
            break
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
