"""Real detectors nobody here wrote, unpacked privately: fail2ban 1.0.2 from Debian.

``fetch_fail2ban`` does ``apt-get download fail2ban`` and ``dpkg -x`` into ``.cache/fail2ban`` (never
installed, its service never started); ``find_fail2ban`` gives its paths: the ``fail2ban-regex``
and ``fail2ban-server``/``fail2ban-client`` scripts, its Python package and its own filters
(``etc/fail2ban/filter.d/sshd.conf``). Everything runs with the package's own code and rules.

``Fail2ban`` runs a private ``fail2ban-server`` (foreground, own socket, pid file, database off,
own log file) with one jail on one log file and no ban action but its own log line, so a test
reads *when* fail2ban banned an address from the server's log: ``Ban 203.0.113.7``.
Standard library only.
"""

from __future__ import annotations

import glob
import os
import re
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


def auth_log_receiver(workdir: Path, **kw: object) -> object:
    """A private rsyslog (``receivers.RsyslogReceiver``) that also writes ``auth.log`` as Debian's
    rsyslog.conf does (``auth,authpriv.* /var/log/auth.log``, the traditional file format): what
    fail2ban's sshd jail reads on a real host."""
    from tests.support import receivers as R

    class AuthLogReceiver(R.RsyslogReceiver):
        @property
        def auth_log(self) -> Path:
            return Path(self.workdir) / "auth.log"

        def config_text(self) -> str:
            text = super().config_text()
            rule = (f'  if prifilt("auth,authpriv.*") then {{ action(type="omfile" file="{self.auth_log}" '
                    'template="RSYSLOG_TraditionalFileFormat" asyncWriting="off" flushOnTXEnd="on") }\n}\n')
            head, sep, _ = text.rpartition("}\n")
            return head + rule
    return AuthLogReceiver(workdir, **kw)     # type: ignore[arg-type]


JAIL = """\
# a private jail written by tests/support/detectors.py: fail2ban's own sshd filter, no ban action
[DEFAULT]
backend = polling
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
