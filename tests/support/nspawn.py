"""Boot a throw-away systemd inside systemd-nspawn on top of the host's own root, and run commands in it.

Stdlib only (Python >= 3.11), root only, Linux only.  Typical use in a pytest fixture::

    reason = nspawn_box.available()
    if reason:
        pytest.skip(reason)
    with nspawn_box.Box(checkout=repo_root, workdir=tmp_path / "box") as box:   # start() on enter
        box.run(["make", "-C", "/src", "install"], timeout=600, check=True)
        box.run(["systemctl", "start", "loggen"], check=True)

How it works (see NOTES.md for the why of each piece):

* ``unshare --mount --propagation private`` gives the launcher a private mount namespace; inside it
  ``mount --bind / WORKDIR/root`` makes the host's root file system (non-recursively, so without
  /proc, /sys, /dev, /tmp...) available as a directory that systemd-nspawn accepts.  That bind
  mount never exists in the host's mount namespace, so it cannot leak: it dies with nspawn.
* ``systemd-nspawn --volatile=overlay`` puts a tmpfs-backed overlayfs over it: the whole tree
  (/, /etc, /usr, /opt, /var ...) is writable inside and every write vanishes at power-off; the
  host's files are never modified.
* On a host whose PID 1 is not systemd, nspawn cannot ask systemd for a scope, so it runs with
  ``--keep-unit`` and puts the container into ``<current cgroup>/payload`` and itself into
  ``<current cgroup>/supervisor``.  Those names are fixed, so two containers started from the same
  cgroup would share (and kill each other's) cgroups.  The launcher therefore first moves itself
  into a cgroup of its own, ``nspawn-box-<name>``, in the unified (and, on hybrid hosts, the
  name=systemd) hierarchy; stop() removes it.
* Commands run inside with ``nsenter --target <container PID 1> --all`` under a clean environment.
"""

from __future__ import annotations

import ctypes
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import time
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["Box", "BoxError", "available"]

STD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
INNER_ENV = {
    "PATH": STD_PATH,
    "HOME": "/root",
    "USER": "root",
    "LOGNAME": "root",
    "SHELL": "/bin/sh",
    "LANG": "C.UTF-8",
    "TERM": "dumb",
    "SYSTEMD_PAGER": "",
    "SYSTEMD_COLORS": "0",
    "SYSTEMD_LESS": "",
    "PAGER": "cat",
}
CGROUP_PREFIX = "nspawn-box-"
_SYSTEMD_BINARIES = ("/usr/lib/systemd/systemd", "/lib/systemd/systemd")
_PR_SET_PDEATHSIG = 1


class BoxError(RuntimeError):
    """The container could not be started, or died."""


def _host_has_systemd() -> bool:
    return os.path.isdir("/run/systemd/system")


def available() -> str | None:
    """None when a Box can work here, else a one-line reason (for pytest.skip)."""
    if not os.path.exists("/proc/self/ns/mnt"):
        return "not Linux (no /proc/self/ns)"
    if os.geteuid() != 0:
        return "needs root"
    try:
        status = Path("/proc/self/status").read_text()
        cap_eff = int(re.search(r"^CapEff:\s*([0-9a-f]+)$", status, re.M).group(1), 16)  # type: ignore[union-attr]
    except (OSError, AttributeError, ValueError):
        return "cannot read own capabilities"
    if not cap_eff & (1 << 21):
        return "needs CAP_SYS_ADMIN"
    for tool in ("systemd-nspawn", "nsenter", "unshare", "mount"):
        if shutil.which(tool, path=STD_PATH) is None:
            hint = " (apt-get install systemd-container)" if tool == "systemd-nspawn" else ""
            return f"{tool} not found{hint}"
    if not any(os.access(p, os.X_OK) for p in _SYSTEMD_BINARIES):
        return "no systemd binary in the host root to boot"
    if not (os.path.exists("/etc/os-release") or os.path.exists("/usr/lib/os-release")):
        return "no os-release in the host root"
    try:
        if "overlay" not in Path("/proc/filesystems").read_text():
            return "kernel has no overlayfs (modprobe overlay)"
    except OSError:
        return "cannot read /proc/filesystems"
    if not _host_has_systemd() and not _cgroup_dirs_probe():
        return "no writable cgroup hierarchy (unified or name=systemd) at /sys/fs/cgroup"
    return None


# ---------------------------------------------------------------------------------------------
# cgroups


def _own_cgroup_dirs(pid: int | str = "self") -> list[Path]:
    """The directories of `pid`'s cgroup in the hierarchies nspawn uses: unified, name=systemd."""
    dirs: list[Path] = []
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return dirs
    pure_v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    for line in lines:
        hid, controllers, path = line.split(":", 2)
        rel = path.lstrip("/")
        if hid == "0" and controllers == "":
            base = Path("/sys/fs/cgroup") if pure_v2 else Path("/sys/fs/cgroup/unified")
        elif controllers == "name=systemd":
            base = Path("/sys/fs/cgroup/systemd")
        else:
            continue
        d = base / rel if rel else base
        if (d / "cgroup.procs").exists():
            dirs.append(d)
    return dirs


def _cgroup_dirs_probe() -> bool:
    return any(os.access(d, os.W_OK) for d in _own_cgroup_dirs())


def _cgroup_pids(top: Path) -> set[int]:
    pids: set[int] = set()
    for dirpath, _dirs, files in os.walk(top):
        if "cgroup.procs" in files:
            try:
                pids.update(int(x) for x in Path(dirpath, "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                pass
    return pids


def _rmdir_tree(top: Path) -> bool:
    """rmdir a cgroup tree bottom-up (cgroupfs dirs can only be rmdir'ed). True if gone."""
    if not top.exists():
        return True
    for dirpath, _dirs, _files in os.walk(top, topdown=False):
        try:
            os.rmdir(dirpath)
        except OSError:
            pass
    return not top.exists()


def sweep_stale_cgroups() -> list[Path]:
    """Remove empty nspawn-box-<owner pid>-* cgroups whose owner process is gone (a Box whose
    Python process was killed before stop()).  A live owner's cgroups are never touched, so
    boxes starting in parallel (pytest-xdist) cannot race each other here."""
    removed = []
    for parent in _own_cgroup_dirs():
        for d in parent.glob(CGROUP_PREFIX + "*"):
            m = re.match(re.escape(CGROUP_PREFIX) + r"(\d+)-", d.name)
            if not m or _alive(int(m.group(1))):
                continue
            if d.is_dir() and not _cgroup_pids(d) and _rmdir_tree(d):
                removed.append(d)
    return removed


# ---------------------------------------------------------------------------------------------
# processes


def _ppid_and_nspid(pid: int) -> tuple[int, list[int]] | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    ppid = int(re.search(r"^PPid:\s*(\d+)$", status, re.M).group(1))  # type: ignore[union-attr]
    m = re.search(r"^NSpid:\s*(.+)$", status, re.M)
    nspid = [int(x) for x in m.group(1).split()] if m else [pid]
    return ppid, nspid


def _find_leader(nspawn_pid: int) -> int | None:
    """The container's PID 1 as seen from the host: the child of nspawn that is PID 1 in its pidns."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        info = _ppid_and_nspid(int(entry))
        if info and info[0] == nspawn_pid and len(info[1]) > 1 and info[1][-1] == 1:
            return int(entry)
    return None


def _exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pdeathsig_term() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except Exception:  # noqa: BLE001 - best effort only
        pass


def _proc_state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] + "/" + stat[stat.index("(") + 1:stat.rindex(")")]
    except (OSError, ValueError):
        return "gone"


def _pgid_members(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[2]) == pgid:
                pids.append(int(entry))
    return pids


def _kill_nsenter_group(p: subprocess.Popen) -> None:
    """Kill what nsenter runs before nsenter itself.  nsenter forks the command into the container's
    pid namespace; if nsenter dies first, its orphaned child is re-parented to the *host's* init,
    which may never reap it, and the container's systemd-shutdown then waits ~10 s for that zombie.
    Killing the inside processes first lets nsenter reap its child and exit by itself."""
    for pid in _pgid_members(p.pid):
        if pid != p.pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _mounted(path: Path) -> bool:
    target = str(path)
    try:
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            if line.split()[4].replace("\\040", " ") == target:
                return True
    except OSError:
        pass
    return False


# ---------------------------------------------------------------------------------------------


class Box:
    """One throw-away systemd container booted from the host's root file system.

    checkout:  a host directory made available at `src` inside (None: nothing).
    src_mode:  "overlay" (default) = writable copy-on-write view, writes land in workdir/src-upper and
               never touch the checkout (needed for `pip install .`, which builds in-tree);
               "ro" = read-only bind mount; "rw" = read-write bind mount (writes reach the host!).
    workdir:   a host directory for the Box (created if missing): the container's mount point root/,
               console.log and src-upper/ live here.  stop() removes root/ and src-upper/, and with
               keep_log=False console.log and then workdir itself if it is empty.  Note that the host's
               /tmp is NOT visible inside (the box gets its own /tmp); bind extra host paths with
               extra_args=["--bind-ro=/host/path:/inside"].
    private_network: True (default) = own network namespace with only `lo` (127.0.0.1 inside is the
               box's own; nothing can leave the box); False = share the host's network namespace.
    boot_target: the unit systemd boots into (basic.target: journald, dbus socket, timers; no gettys).
    """

    def __init__(
        self,
        checkout: Path | str | None,
        workdir: Path | str,
        *,
        name: str | None = None,
        src: str = "/src",
        src_mode: str = "overlay",
        private_network: bool = True,
        boot_target: str = "basic.target",
        extra_args: Sequence[str] = (),
        keep_log: bool = True,
        kill_with_parent: bool = True,
    ) -> None:
        if src_mode not in ("overlay", "ro", "rw"):
            raise ValueError(f"src_mode must be overlay, ro or rw, not {src_mode!r}")
        self.checkout = Path(checkout).resolve() if checkout is not None else None
        self.workdir = Path(workdir).resolve()
        self.name = name or f"box-{os.getpid()}-{secrets.token_hex(3)}"
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}", self.name):
            raise ValueError(f"bad machine name {self.name!r}")
        self.src = src
        self.src_mode = src_mode
        self.private_network = private_network
        self.boot_target = boot_target
        self.extra_args = list(extra_args)
        self.keep_log = keep_log
        self.kill_with_parent = kill_with_parent
        self.root = self.workdir / "root"
        self.src_upper = self.workdir / "src-upper"
        self.console_log = self.workdir / "console.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.leader: int | None = None
        self.cgroups: list[Path] = []
        self.boot_seconds: float | None = None
        self.stop_seconds: float | None = None
        self._log_fh: typing.IO[bytes] | None = None
        self.stop_notes: list[str] = []

    # -- life cycle -----------------------------------------------------------------------------

    def nspawn_argv(self) -> list[str]:
        argv = [
            "systemd-nspawn",
            f"--directory={self.root}",
            f"--machine={self.name}",
            "--volatile=overlay",      # whole / writable, tmpfs upper, gone at exit
            "--register=no",           # no systemd-machined on the host
            "--link-journal=no",       # the journal stays inside (in the tmpfs overlay)
            "--kill-signal=SIGRTMIN+3",  # SIGTERM to nspawn = orderly halt of the container
            "--timezone=off",          # leave /etc/localtime alone
            "--resolv-conf=off",       # and /etc/resolv.conf
            "--boot",
        ]
        if not _host_has_systemd():
            argv.append("--keep-unit")  # no systemd to allocate a scope from: use our own cgroup
        if self.private_network:
            argv.append("--private-network")
        if self.checkout is not None:
            if self.src_mode == "overlay":
                argv.append(f"--overlay={self.checkout}:{self.src_upper}:{self.src}")
            elif self.src_mode == "ro":
                argv.append(f"--bind-ro={self.checkout}:{self.src}")
            else:
                argv.append(f"--bind={self.checkout}:{self.src}")
        argv += self.extra_args
        argv += ["--", f"systemd.unit={self.boot_target}"]
        return argv

    def start(self, timeout: float = 60.0) -> Box:
        """Boot; return once `systemctl is-system-running` says running or degraded."""
        if self.proc is not None:
            raise BoxError("already started")
        reason = available()
        if reason:
            raise BoxError(reason)
        t0 = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(exist_ok=True)
        if self.checkout is not None and self.src_mode == "overlay":
            self.src_upper.mkdir(exist_ok=True)
        script = ["set -e"]
        env = {"PATH": STD_PATH, "LANG": "C.UTF-8", "TERM": "dumb", "SYSTEMD_COLORS": "0",
               "SYSTEMD_LOG_COLOR": "0"}
        try:
            if not _host_has_systemd():
                sweep_stale_cgroups()
                for parent in _own_cgroup_dirs():
                    cg = parent / f"{CGROUP_PREFIX}{os.getpid()}-{self.name}"
                    cg.mkdir()
                    self.cgroups.append(cg)
                    script.append(f"echo $$ > {shlex.quote(str(cg / 'cgroup.procs'))}")
                if not self.cgroups:
                    raise BoxError("found no cgroup hierarchy to put the container in")
            script.append(f"mount --bind / {shlex.quote(str(self.root))}")
            script.append("exec " + shlex.join(self.nspawn_argv()))
            self._log_fh = open(self.console_log, "wb")
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", "\n".join(script)],
                stdin=subprocess.DEVNULL, stdout=self._log_fh, stderr=subprocess.STDOUT,
                env=env, start_new_session=True, close_fds=True,
                preexec_fn=_pdeathsig_term if self.kill_with_parent else None,
            )
        except BaseException:
            self._cleanup_host_side()
            raise
        try:
            self._wait_ready(t0 + timeout)
        except BaseException:
            self.stop()
            raise
        self.boot_seconds = time.monotonic() - t0
        return self

    def _wait_ready(self, deadline: float) -> None:
        assert self.proc is not None
        state = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BoxError(f"systemd-nspawn exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.leader is None:
                leader = _find_leader(self.proc.pid)
                # before the exec the "leader" is still nspawn's inner child setting things up
                if leader and os.path.basename(_exe(leader)) == "systemd":
                    self.leader = leader
            if self.leader is not None:
                try:
                    r = self.run(["systemctl", "is-system-running"], timeout=10)
                    state = r.stdout.strip()
                except subprocess.TimeoutExpired:
                    state = "(systemctl timed out)"
                if state in ("running", "degraded"):
                    return
                if state in ("maintenance", "stopping"):
                    raise BoxError(f"container is {state}:\n{self.log_tail()}")
            time.sleep(0.05)
        raise BoxError(f"container not up in time (last state {state!r}):\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> None:
        """Power off (SIGTERM to nspawn = SIGRTMIN+3 to the container's systemd), kill leftovers,
        remove the cgroups and the scratch files.  Safe to call more than once, or after a failed start."""
        t0 = time.monotonic()
        proc = self.proc
        if proc is not None and proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                # Kill the container's PID 1 (which takes its whole pid namespace with it) while nspawn
                # is still alive to reap it and exit by itself; killing nspawn first would leave PID 1
                # as a zombie for the host's init to reap.
                if self.leader is not None and _alive(self.leader):
                    os.kill(self.leader, signal.SIGKILL)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        # Anything still in the box's cgroups belongs to this box (its nspawn and container processes;
        # commands run() starts stay in the caller's cgroup but die with the container's pid namespace).
        deadline = time.monotonic() + 10
        while self.cgroups and time.monotonic() < deadline:
            pids: set[int] = set()
            for cg in self.cgroups:
                pids |= _cgroup_pids(cg)
            if not pids:
                break
            self.stop_notes.append(f"{time.monotonic() - t0:.2f}s in cgroups: " + ", ".join(
                f"{pid}:{_proc_state(pid)}" for pid in sorted(pids)))
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        self._cleanup_host_side()
        self.stop_seconds = time.monotonic() - t0
        self.proc = None
        self.leader = None

    def _cleanup_host_side(self) -> None:
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        leftovers = []
        for cg in self.cgroups:
            if not _rmdir_tree(cg):
                leftovers.append(str(cg))
        self.cgroups = []
        # nspawn leaves this (empty) on a host whose /run is not a tmpfs: it refuses to rm -rf there.
        try:
            os.rmdir(f"/run/systemd/nspawn/propagate/{self.name}")
        except OSError:
            pass
        if _mounted(self.root):  # cannot happen (the bind mount lives in nspawn's namespace); be sure
            subprocess.run(["umount", "--lazy", str(self.root)], timeout=30, check=False)
        try:
            self.root.rmdir()  # an empty mount point; rmdir (not rmtree) so a live mount is never emptied
        except FileNotFoundError:
            pass
        # only what this Box made: the /src overlay's upper dir and nspawn's overlay work dir next to it,
        # and nspawn's image lock file W/.#root.lck (left behind when nspawn had to be SIGKILLed)
        for p in [self.src_upper, *self.workdir.glob(".#" + self.src_upper.name + "*")]:
            if p.exists():
                shutil.rmtree(p)
        (self.workdir / f".#{self.root.name}.lck").unlink(missing_ok=True)
        if not self.keep_log:
            self.console_log.unlink(missing_ok=True)
            try:
                self.workdir.rmdir()  # only if empty: never takes the caller's files with it
            except OSError:
                pass
        if leftovers:
            raise BoxError(f"could not remove cgroups {leftovers}")

    def __enter__(self) -> Box:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- using it -------------------------------------------------------------------------------

    def nsenter_argv(self, cmd: Sequence[str], *, cwd: str | None = None,
                     env: Mapping[str, str] | None = None) -> list[str]:
        if self.leader is None:
            raise BoxError("not running")
        inner = dict(INNER_ENV)
        inner.update(env or {})
        argv = ["nsenter", f"--target={self.leader}", "--all", "--root", "--wd", "--", "env", "-i"]
        if cwd:
            argv.append(f"--chdir={cwd}")
        argv += [f"{k}={v}" for k, v in inner.items()]
        argv += list(cmd)  # (env takes no "--" after the assignments)
        return argv

    def run(self, cmd: Sequence[str], timeout: float = 60.0, *, check: bool = False,
            input: str | None = None, cwd: str | None = None,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run `cmd` inside (as root, all of the container's namespaces, clean environment + `env`).
        On timeout the whole process group is SIGKILLed and subprocess.TimeoutExpired raised."""
        argv = self.nsenter_argv(cmd, cwd=cwd, env=env)
        p = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={"PATH": STD_PATH, "LANG": "C.UTF-8"}, start_new_session=True)
        try:
            out, err = p.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_nsenter_group(p)
            out, err = p.communicate()
            raise subprocess.TimeoutExpired(list(cmd), timeout, out, err) from None
        r = subprocess.CompletedProcess(list(cmd), p.returncode, out, err)
        if check and r.returncode != 0:
            raise subprocess.CalledProcessError(r.returncode, list(cmd), out, err)
        return r

    def sh(self, script: str, timeout: float = 60.0, **kw) -> subprocess.CompletedProcess[str]:
        return self.run(["/bin/sh", "-c", script], timeout, **kw)

    def write_file(self, path: str, text: str, mode: int = 0o644) -> None:
        self.run(["/bin/sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1"',
                  "sh", path, format(mode, "o")], input=text, check=True, timeout=30)

    def show(self, unit: str, *props: str) -> dict[str, str]:
        """`systemctl show -p A,B unit` as a dict."""
        r = self.run(["systemctl", "show", "-p", ",".join(props), unit], timeout=30, check=True)
        return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)

    def wait_for(self, unit: str, timeout: float = 30.0, **expect: str) -> dict[str, str]:
        """Poll `systemctl show` until every prop=value in `expect` holds; return the last dict."""
        deadline = time.monotonic() + timeout
        while True:
            props = self.show(unit, *expect)
            if all(props.get(k) == v for k, v in expect.items()):
                return props
            if time.monotonic() > deadline:
                raise TimeoutError(f"{unit}: wanted {expect}, have {props}")
            time.sleep(0.1)

    def journal(self, unit: str | None = None, *args: str, timeout: float = 30.0) -> str:
        """journalctl --no-pager [-u unit] args... (after journalctl --sync so it is complete)."""
        self.run(["journalctl", "--sync"], timeout=timeout)
        cmd = ["journalctl", "--no-pager", "--quiet"]
        if unit:
            cmd += ["-u", unit]
        return self.run(cmd + list(args), timeout=timeout).stdout

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.console_log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])
