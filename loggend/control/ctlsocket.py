"""The supervisor's control socket (``loggend ctl``): where it lives, the server, the client.

One short exchange per connection: the client sends one line (``rate 250k``, ``pause``,
``resume``, ``status``, ``profile SPEC``) and reads one JSON line back (``{"ok": true, "message":
..., "status": {...}}``), then both close. The server never blocks the supervisor: the listening
socket and every open connection are non-blocking and are waited on in the supervisor's own
``select`` (beside the signal pipe); a connection that has not sent its line within
``CLIENT_TIMEOUT`` is dropped, and at most ``MAX_CLIENTS`` are open at once.

Who may talk to it: the socket file is created mode 0600 (root or the run's own user can open it),
and every connection's peer is checked again with ``SO_PEERCRED``: uid 0 or the run's uid, anyone
else gets one refusal line. ``auto`` places it in the runtime directory (``runtime_dir``) under
the supervisor's pid, so that several runs on one machine never collide; ``loggend ctl`` finds the
one running there (``find_socket``).
"""

from __future__ import annotations

import json
import os
import socket
import stat
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from loggend.engine.journal import ERR, WARNING, Log
from loggend.files import identity, kind_of

RUN_DIR = "/run/loggen"
SOCKET_PREFIX, SOCKET_SUFFIX = "loggend-", ".sock"
SOCKET_MODE = 0o600
TMP_DIR_MODE = 0o700
MAX_REQUEST_BYTES = 1024
MAX_CLIENTS = 16
PROBE_TIMEOUT = 0.5           # a connect to a socket found at the path: refused means a run that ended
CLIENT_TIMEOUT = 2.0          # seconds a connection may take to send its line
REQUEST_TIMEOUT = 5.0         # the client's wait for the answer
UCRED = struct.Struct("3i")   # struct ucred: pid, uid, gid


class ControlError(Exception):
    """The socket cannot be set up or reached: one line for the log or the terminal."""


def runtime_dir(euid: int | None = None, environ: Mapping[str, str] | None = None, run_dir: str = RUN_DIR) -> str:
    """Where ``auto`` sockets go: systemd's $RUNTIME_DIRECTORY (a unit with ``RuntimeDirectory=``; the
    units ship ``loggen/%N``, so /run/loggen/loggen or /run/loggen/loggen@NAME), /run/loggen as root
    (or when it is writable), else $XDG_RUNTIME_DIR, else /tmp/loggen-<uid>."""
    euid = os.geteuid() if euid is None else euid
    env = os.environ if environ is None else environ
    systemd = env.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if systemd and os.path.isdir(systemd):
        return systemd
    if euid == 0 or os.access(run_dir, os.W_OK | os.X_OK):
        return run_dir
    xdg = env.get("XDG_RUNTIME_DIR", "")
    if xdg and os.path.isdir(xdg):
        return xdg
    return f"/tmp/loggen-{euid}"


def socket_path(setting: str, pid: int, euid: int | None = None) -> str | None:
    """The socket of a run whose ``control_socket`` is ``setting``; None when it is off."""
    if setting == "off":
        return None
    if setting == "auto":
        return os.path.join(runtime_dir(euid), f"{SOCKET_PREFIX}{pid}{SOCKET_SUFFIX}")
    return setting


def sweep_stale(directory: str) -> list[str]:
    """Remove ``loggend-<pid>.sock`` files of runs that are gone (killed before they could), ours only."""
    removed: list[str] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        path = os.path.join(directory, name)
        owner = pid_of(path)
        try:
            st = os.lstat(path)
            if owner is not None and not os.path.exists(f"/proc/{owner}") and st.st_uid == os.geteuid() \
                    and stat.S_ISSOCK(st.st_mode):
                os.unlink(path)
                removed.append(path)
        except OSError:
            pass
    return removed


def _private_dir(path: str) -> None:
    """Make the socket's directory; one under /tmp must be ours, not a link, and closed to others."""
    if path == RUN_DIR:
        os.makedirs(path, mode=0o755, exist_ok=True)
        return
    if path != f"/tmp/loggen-{os.geteuid()}":
        return                                  # a directory the user chose or $XDG_RUNTIME_DIR: theirs
    try:
        os.mkdir(path, TMP_DIR_MODE)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise ControlError(f"{path} is not a private directory of uid {os.geteuid()}; remove it or set "
                           "control_socket")


def claim_path(path: str) -> bool:
    """ControlError unless ``path`` is free for a new socket: nothing there (False), or the socket of
    a run that ended, where a connect is refused (True: remove it). A file, a link (never followed),
    a directory, or a socket that answers or cannot be probed belongs to someone else."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as err:
        raise ControlError(f"control socket {path}: {err.strerror}") from None
    if not stat.S_ISSOCK(st.st_mode):
        raise ControlError(f"control socket {path}: {kind_of(st.st_mode)} is there, not the socket of a run "
                           "that ended; remove it or set control_socket to another path")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(PROBE_TIMEOUT)
    try:
        probe.connect(path)
        why = "another run is listening there"
    except ConnectionRefusedError:
        return True
    except OSError as err:
        why = f"a socket loggen cannot probe ({err.strerror or 'no answer'})"
    finally:
        probe.close()
    raise ControlError(f"control socket {path}: {why}; set control_socket to another path")


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int


Handler = Callable[[str, Peer], dict[str, Any]]


@dataclass
class _Client:
    sock: socket.socket
    peer: Peer
    deadline: float
    data: bytearray = field(default_factory=bytearray)


class ControlServer:
    """The listening socket and its open connections, serviced from the supervisor's loop."""

    def __init__(self, path: str, handler: Handler, log: Log,
                 clock: Callable[[], float], uid: int | None = None) -> None:
        self.path, self.handler, self.log, self.clock = path, handler, log, clock
        self.uid = os.geteuid() if uid is None else uid
        self.listener: socket.socket | None = None
        self.clients: dict[int, _Client] = {}
        self.bound = (-1, -1, -1)                   # files.identity of the socket file bound

    def open(self) -> None:
        """Bind and listen; a stale file is replaced, a live one is someone else's run (an error)."""
        _private_dir(os.path.dirname(self.path) or ".")
        if claim_path(self.path):
            os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o777 & ~SOCKET_MODE)        # created 0600: never open to others, even for a moment
        try:
            sock.bind(self.path)
        except OSError as err:
            sock.close()
            raise ControlError(f"control socket {self.path}: {err.strerror}") from None
        finally:
            os.umask(old)
        os.chmod(self.path, SOCKET_MODE)
        self.bound = identity(self.path)
        sock.listen(MAX_CLIENTS)
        sock.setblocking(False)
        self.listener = sock

    def fds(self) -> list[int]:
        """What the loop's select waits on for this server."""
        if self.listener is None:
            return []
        return [self.listener.fileno(), *self.clients]

    def deadline(self) -> float | None:
        """When the oldest open connection times out (the loop wakes for it)."""
        return min((c.deadline for c in self.clients.values()), default=None)

    def service(self, ready: set[int]) -> None:
        """Accept what is waiting, read what arrived, answer complete requests, drop expired ones."""
        if self.listener is None:
            return
        if self.listener.fileno() in ready:
            self._accept()
        now = self.clock()
        for fd, client in list(self.clients.items()):
            if fd in ready:
                self._read(fd, client)
            elif now >= client.deadline:
                self._drop(fd, "timed out before a request")

    def _accept(self) -> None:
        assert self.listener is not None
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:
                self.log(f"control socket: accept failed: {err.strerror}", ERR)
                return
            sock.setblocking(False)
            peer = Peer(*UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, UCRED.size)))
            if peer.uid not in (0, self.uid):
                self.log(f"control socket: refused pid {peer.pid} (uid {peer.uid}): only root or uid {self.uid}",
                         WARNING)
                self._answer(sock, {"ok": False, "message": f"refused: uid {peer.uid} is neither root nor "
                                                            f"the run's uid {self.uid}"})
                continue
            if len(self.clients) >= MAX_CLIENTS:
                self._answer(sock, {"ok": False, "message": "busy: too many open control connections"})
                continue
            self.clients[sock.fileno()] = _Client(sock, peer, self.clock() + CLIENT_TIMEOUT)

    def _read(self, fd: int, client: _Client) -> None:
        try:
            chunk = client.sock.recv(MAX_REQUEST_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        client.data += chunk
        if b"\n" not in client.data and chunk and len(client.data) < MAX_REQUEST_BYTES:
            return                                      # more to come
        del self.clients[fd]
        line = bytes(client.data).split(b"\n", 1)[0].decode("utf-8", "replace").strip()
        if not line:
            client.sock.close()
            return
        try:
            reply = self.handler(line, client.peer)
        except Exception as err:            # a bug in a handler must not take the supervisor down
            self.log(f"control socket: {line!r} failed: {type(err).__name__}: {err}", ERR)
            reply = {"ok": False, "message": f"internal error: {type(err).__name__}"}
        self._answer(client.sock, reply)

    def _drop(self, fd: int, why: str) -> None:
        client = self.clients.pop(fd)
        self.log(f"control socket: dropped a connection from pid {client.peer.pid}: {why}", WARNING)
        client.sock.close()

    @staticmethod
    def _answer(sock: socket.socket, reply: dict[str, Any]) -> None:
        """One JSON line; a reply is far smaller than a socket buffer, so it never has to wait."""
        try:
            sock.send(json.dumps(reply).encode() + b"\n")
        except OSError:
            pass
        sock.close()

    def close(self) -> None:
        for fd in list(self.clients):
            self.clients.pop(fd).sock.close()
        if self.listener is not None:
            self.listener.close()
            self.listener = None
            try:
                if identity(self.path) == self.bound:       # ours still: not a file put there since
                    os.unlink(self.path)
            except OSError:
                pass


# --- the client side ----------------------------------------------------------------------------------

def pid_of(path: str) -> int | None:
    name = os.path.basename(path)
    if name.startswith(SOCKET_PREFIX) and name.endswith(SOCKET_SUFFIX):
        digits = name[len(SOCKET_PREFIX):-len(SOCKET_SUFFIX)]
        return int(digits) if digits.isdigit() else None
    return None


def _candidates(directory: str) -> list[str]:
    """Socket-like names in ``directory`` and its subdirectories (a unit's own, /run/loggen/loggen@x)."""
    out: list[str] = []
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return out
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            out.extend(os.path.join(entry.path, name) for name in sorted(_listdir(entry.path)))
        else:
            out.append(entry.path)
    return out


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def find_socket(pid: int | None = None, directory: str | None = None) -> str:
    """The socket of the run with ``pid``, or of the one run found in the runtime directory (or one
    level below it, where the systemd units keep theirs)."""
    directory = directory or runtime_dir()
    found = []
    for path in _candidates(directory):
        owner = pid_of(path)
        if owner is not None and os.path.exists(f"/proc/{owner}") and pid in (None, owner):
            found.append((owner, path))
    if pid is not None:
        if not found:
            raise ControlError(f"no control socket of pid {pid} in {directory}")
        return found[0][1]
    if not found:
        raise ControlError(f"no running loggend in {directory} (is it started with control_socket: off, or "
                           "elsewhere? give --socket PATH)")
    if len(found) > 1:
        raise ControlError(f"several runs in {directory} (pids {', '.join(str(p) for p, _ in found)}): "
                           "pick one with --pid PID or --socket PATH")
    return found[0][1]


def request(path: str, line: str, timeout: float = REQUEST_TIMEOUT) -> dict[str, Any]:
    """Send one request line, return the decoded reply; ControlError when nobody answers properly."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        try:
            sock.sendall(line.strip().encode() + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            pass                        # refused at once (SO_PEERCRED): its reason is waiting to be read
        data = bytearray()
        while b"\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except FileNotFoundError:
        raise ControlError(f"{path}: no such control socket (is the run still up?)") from None
    except PermissionError:
        raise ControlError(f"{path}: permission denied (only root or the run's own user may control it)") from None
    except ConnectionRefusedError:
        raise ControlError(f"{path}: nobody is listening (the run has ended)") from None
    except TimeoutError:
        raise ControlError(f"{path}: no answer within {timeout:g} s") from None
    except OSError as err:
        raise ControlError(f"{path}: {err.strerror or err}") from None
    finally:
        sock.close()
    if not data:
        raise ControlError(f"{path}: closed without an answer")
    try:
        reply = json.loads(bytes(data).split(b"\n", 1)[0])
    except (ValueError, RecursionError):
        reply = None
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool) or \
            not isinstance(reply.get("message", ""), str) or not isinstance(reply.get("status", {}), dict):
        raise ControlError(f"{path}: not a loggend control socket (no JSON answer of its kind)")
    return reply
