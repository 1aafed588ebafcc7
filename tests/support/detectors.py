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
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_FAIL2BAN_ROOT = os.environ.get("LOGGEN_FAIL2BAN_ROOT", str(HERE.parent.parent / ".cache" / "fail2ban"))
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
