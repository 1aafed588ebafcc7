"""Private, throw-away syslog receivers (rsyslog and syslog-ng) for loggen's
integration tests.  Standard library only.

Every receiver started here is
  * configured by its own config file in its own work dir,
  * listening only on 127.0.0.1 on high ports picked as free,
  * run in the foreground (rsyslogd -n / syslog-ng -F) as a child process in
    its own session / process group, with its own pid file (and, for
    syslog-ng, its own persist file and control socket),
  * writing every received message as ONE JSON object per line (parsed
    fields) to <workdir>/out.jsonl,
  * stopped with SIGTERM to its own process group (SIGKILL after a timeout).
It never touches /etc/rsyslog.conf, /etc/syslog-ng, /var/log, /dev/log or the
system's logger.

Typical use in pytest::

    import receivers as R
    reason = R.rsyslog_available()
    if reason: pytest.skip(reason)
    with R.RsyslogReceiver(tmp_path / "rs", udp=True, tcp=True) as rx:
        send_something_to(("127.0.0.1", rx.ports["udp"]))
        recs = rx.wait_for_records(10, timeout=10)

Records (after the default normalisation, see ``normalize_record``) have the
keys: receiver, input, pri, facility, severity, timestamp, received, hostname,
appname, procid, msgid, sd (raw SD string), sdata ({sd-id: {param: value}}),
msg, raw, and when the MSG body was recognised: json / cef / leef.
"""
from __future__ import annotations

import atexit
import glob
import json
import os
import re
import shutil
import signal
import socket
import ssl
import string
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from loggend.control.pki import Pki
from loggend.control.pki import make_pki as _make_pki

__all__ = [
    "ConfTemplate", "render", "free_port", "make_pki", "Pki", "client_ssl_context",
    "rsyslog_available", "rsyslog_tls_available", "syslog_ng_available",
    "openssl_available", "find_syslog_ng", "fetch_syslog_ng", "SyslogNgInstall",
    "RsyslogReceiver", "SyslogNgReceiver", "RsyslogRelay", "CountingSink", "CountingSinkProcess",
    "send_udp", "send_tcp", "send_tls", "octet_frame", "udp_socket_drops",
    "send_udp_at_rate", "ReceiverError",
]

HERE = Path(__file__).resolve().parent


class ReceiverError(RuntimeError):
    pass


# --------------------------------------------------------------------------
# config templates: string.Template with "@@" as delimiter, i.e. @@{name}.
# ("$" clashes with rsyslog's $!/$. and syslog-ng's $PRI, "{}" with both.)
# --------------------------------------------------------------------------
class ConfTemplate(string.Template):
    delimiter = "@@"


def render(template: str, **values) -> str:
    return ConfTemplate(template).substitute(**{k: str(v) for k, v in values.items()})


# --------------------------------------------------------------------------
# ports and /proc/net
# --------------------------------------------------------------------------
def free_port(tcp: bool = True, udp: bool = True, tries: int = 50) -> int:
    """A port number on 127.0.0.1 that is currently free for TCP and/or UDP."""
    for _ in range(tries):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
        try:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            if tcp and udp:
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
                finally:
                    u.close()
            if port >= 10000:
                return port
        finally:
            s.close()
    raise ReceiverError("could not find a free port")


def _proc_net_sockets(proto: str) -> list[tuple[str, int, str, int, int]]:
    """(local_ip_hex, port, state_hex, inode, drops) from /proc/net/<proto>."""
    out = []
    try:
        with open(f"/proc/net/{proto}") as f:
            next(f)
            for line in f:
                p = line.split()
                ip_hex, port_hex = p[1].split(":")
                drops = int(p[12]) if proto.startswith("udp") and len(p) > 12 else 0
                out.append((ip_hex, int(port_hex, 16), p[3], int(p[9]), drops))
    except FileNotFoundError:
        pass
    return out


def _pid_socket_inodes(pid: int) -> set:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:
        pass
    return inodes


def listening(proto: str, port: int, pid: int | None = None) -> bool:
    """True if a socket is bound to 127.0.0.1:port (TCP: in LISTEN state),
    and, when pid is given, that socket belongs to that process."""
    inodes = _pid_socket_inodes(pid) if pid else None
    for ip_hex, p, state, inode, _ in _proc_net_sockets(proto):
        if p != port or ip_hex not in ("0100007F", "00000000"):
            continue
        if proto == "tcp" and state != "0A":
            continue
        if inodes is None or inode in inodes:
            return True
    return False


def udp_socket_drops(port: int) -> int:
    """Kernel drop counter (last column of /proc/net/udp) of the socket bound to
    127.0.0.1:port -- datagrams lost because that socket's buffer was full."""
    return sum(d for ip, p, _s, _i, d in _proc_net_sockets("udp")
               if p == port and ip in ("0100007F", "00000000"))


# --------------------------------------------------------------------------
# throw-away PKI with the openssl CLI
# --------------------------------------------------------------------------
def openssl_available() -> str | None:
    return None if shutil.which("openssl") else "openssl CLI not found (apt-get install openssl)"


def make_pki(directory, *, days: int = 2, server_dns=("localhost",), server_ips=("127.0.0.1",),
             client_cn: str = "loggen-client") -> Pki:
    """CA + server cert (SAN: DNS:localhost, IP:127.0.0.1) + client cert, all signed by the CA
    (the product's own throw-away PKI, made with the openssl CLI)."""
    return _make_pki(directory, (*server_dns, *server_ips), client_cn, days)


def client_ssl_context(pki: Pki, mutual: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    if mutual:
        ctx.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    return ctx


# --------------------------------------------------------------------------
# tiny senders (for checking the receivers themselves)
# --------------------------------------------------------------------------
def octet_frame(msg) -> bytes:
    b = msg.encode() if isinstance(msg, str) else msg
    return str(len(b)).encode() + b" " + b


def _b(m) -> bytes:
    return m.encode() if isinstance(m, str) else m


def send_udp(port: int, messages: Iterable, host: str = "127.0.0.1") -> int:
    n = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for m in messages:
            s.sendto(_b(m), (host, port))
            n += 1
    return n


def _frame_all(messages, framing: str) -> bytes:
    if framing == "octet":
        return b"".join(octet_frame(m) for m in messages)
    if framing == "lf":
        return b"".join(_b(m) + b"\n" for m in messages)
    raise ValueError(framing)


def send_tcp(port: int, messages: Iterable, framing: str = "octet", host: str = "127.0.0.1",
             timeout: float = 5.0) -> int:
    msgs = list(messages)
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(_frame_all(msgs, framing))
        s.shutdown(socket.SHUT_WR)
    return len(msgs)


def send_tls(port: int, messages: Iterable, ctx: ssl.SSLContext, framing: str = "octet",
             server_hostname: str = "127.0.0.1", host: str = "127.0.0.1", timeout: float = 5.0) -> int:
    msgs = list(messages)
    raw = socket.create_connection((host, port), timeout=timeout)
    with ctx.wrap_socket(raw, server_hostname=server_hostname) as s:
        s.sendall(_frame_all(msgs, framing))
        try:
            s.unwrap()          # send close_notify: avoids "non-properly terminated" noise
        except (OSError, ssl.SSLError):
            pass
    return len(msgs)


def send_udp_at_rate(port: int, rate: float, duration: float, make_msg: Callable[[int], bytes],
                     start_seq: int = 0, host: str = "127.0.0.1") -> tuple[int, float]:
    """Send UDP datagrams at a fixed rate (paced in 1 ms ticks).  Returns
    (sent, achieved_seconds).  Bounded by `duration`."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    addr = (host, port)
    sent = 0
    t0 = time.perf_counter()
    end = t0 + duration
    try:
        while True:
            now = time.perf_counter()
            if now >= end:
                break
            due = int((now - t0) * rate)
            while sent < due:
                try:
                    s.sendto(make_msg(start_seq + sent), addr)
                except (BlockingIOError, ConnectionRefusedError):
                    pass
                sent += 1
            time.sleep(0.0005)
    finally:
        s.close()
    return sent, time.perf_counter() - t0


class CountingSink:
    """Counting receiver on 127.0.0.1 (UDP, or TCP with octet-counted / LF
    framing) in a background thread.  Optionally keeps the last-seen payloads
    (keep>0) and extracts seq numbers with `seq_re`."""

    def __init__(self, proto: str = "udp", port: int | None = None, rcvbuf: int = 32 << 20,
                 keep: int = 0, seq_re: bytes | None = None):
        self.proto, self.rcvbuf, self.keep = proto, rcvbuf, keep
        self.port = port or free_port(tcp=proto == "tcp", udp=proto == "udp")
        self.count = 0
        self.bytes = 0
        self.seqs = set()
        self.kept: list[bytes] = []
        self._seq_re = re.compile(seq_re) if seq_re else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    def _note(self, payload: bytes):
        self.count += 1
        self.bytes += len(payload)
        if self.keep and len(self.kept) < self.keep:
            self.kept.append(payload)
        if self._seq_re:
            m = self._seq_re.search(payload)
            if m:
                self.seqs.add(int(m.group(1)))

    def start(self) -> CountingSink:
        if self.proto == "udp":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for opt in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
            if opt is None:
                continue
            try:
                s.setsockopt(socket.SOL_SOCKET, opt, self.rcvbuf)
                break
            except OSError:
                continue
        s.bind(("127.0.0.1", self.port))
        if self.proto == "tcp":
            s.listen(64)
        s.settimeout(0.2)
        self._sock = s
        self._thread = threading.Thread(target=self._run_udp if self.proto == "udp" else self._run_tcp,
                                        daemon=True)
        self._thread.start()
        return self

    def _run_udp(self):
        s = self._sock
        while not self._stop.is_set():
            try:
                data = s.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                break
            self._note(data)

    def _run_tcp(self):
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self._sock, selectors.EVENT_READ, None)
        bufs: dict[socket.socket, bytearray] = {}
        while not self._stop.is_set():
            for key, _ in sel.select(timeout=0.2):
                if key.data is None:
                    try:
                        c, _a = self._sock.accept()
                    except OSError:
                        continue
                    c.setblocking(False)
                    bufs[c] = bytearray()
                    sel.register(c, selectors.EVENT_READ, "c")
                    continue
                c = key.fileobj
                try:
                    data = c.recv(1 << 20)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(c)
                    c.close()
                    bufs.pop(c, None)
                    continue
                buf = bufs[c]
                buf += data
                self._drain(buf)
        for c in list(bufs):
            c.close()
        sel.close()

    def _drain(self, buf: bytearray):
        while buf:
            if buf[:1].isdigit():                      # octet-counted: LEN SP MSG
                sp = buf.find(b" ")
                if sp < 0:
                    return
                n = int(buf[:sp])
                if len(buf) < sp + 1 + n:
                    return
                self._note(bytes(buf[sp + 1:sp + 1 + n]))
                del buf[:sp + 1 + n]
            else:                                       # LF framing
                nl = buf.find(b"\n")
                if nl < 0:
                    return
                self._note(bytes(buf[:nl]))
                del buf[:nl + 1]

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        if self._sock:
            self._sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _sink_proc(proto, port, rcvbuf, count, stop, ready):
    sink = CountingSink(proto, port, rcvbuf).start()
    ready.set()
    while not stop.wait(0.05):
        count.value = sink.count
    sink.stop()
    count.value = sink.count


class CountingSinkProcess:
    """A CountingSink in a separate (forked) process, so that a Python sender
    in the test process does not share the GIL with it (use for rate tests)."""

    def __init__(self, proto: str = "udp", port: int | None = None, rcvbuf: int = 32 << 20):
        self.proto, self.rcvbuf = proto, rcvbuf
        self.port = port or free_port(tcp=proto == "tcp", udp=proto == "udp")
        self._p = None

    def start(self) -> CountingSinkProcess:
        import multiprocessing as mp
        ctx = mp.get_context("fork")
        self._count = ctx.Value("q", 0, lock=False)
        self._stop, ready = ctx.Event(), ctx.Event()
        self._p = ctx.Process(target=_sink_proc, daemon=True,
                              args=(self.proto, self.port, self.rcvbuf, self._count, self._stop, ready))
        self._p.start()
        if not ready.wait(10):
            self.stop()
            raise ReceiverError("counting sink process did not start")
        return self

    @property
    def count(self) -> int:
        return self._count.value

    def stop(self):
        if self._p is None:
            return
        self._stop.set()
        self._p.join(5)
        if self._p.is_alive():
            self._p.terminate()      # our own child, by its Process handle
            self._p.join(5)
        self._p = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# --------------------------------------------------------------------------
# availability
# --------------------------------------------------------------------------
RSYSLOGD = "/usr/sbin/rsyslogd"
RSYSLOG_MODULES = ("imudp", "imtcp", "imptcp", "mmpstrucdata", "mmjsonparse", "mmnormalize",
                   "mmrm1stspace")


def _rsyslog_moddir() -> str | None:
    for d in sorted(glob.glob("/usr/lib/*/rsyslog")) + ["/usr/lib/rsyslog"]:
        if os.path.exists(os.path.join(d, "imudp.so")):
            return d
    return None


def rsyslog_available() -> str | None:
    """None if a usable rsyslogd is installed, else a skip reason."""
    exe = shutil.which("rsyslogd") or (RSYSLOGD if os.access(RSYSLOGD, os.X_OK) else None)
    if not exe:
        return ("rsyslogd not installed (DEBIAN_FRONTEND=noninteractive apt-get install -y "
                "--no-install-recommends rsyslog rsyslog-gnutls rsyslog-openssl)")
    moddir = _rsyslog_moddir()
    if not moddir:
        return "rsyslog module directory not found"
    missing = [m for m in RSYSLOG_MODULES if not os.path.exists(os.path.join(moddir, m + ".so"))]
    if missing:
        return "rsyslog modules missing: " + ", ".join(missing)
    return None


def rsyslog_tls_available(driver: str = "gtls") -> str | None:
    """driver: "gtls" (package rsyslog-gnutls) or "ossl" (package rsyslog-openssl)."""
    r = rsyslog_available() or openssl_available()
    if r:
        return r
    if not os.path.exists(os.path.join(_rsyslog_moddir(), f"lmnsd_{driver}.so")):
        pkg = {"gtls": "rsyslog-gnutls", "ossl": "rsyslog-openssl"}.get(driver, "?")
        return f"rsyslog netstream driver lmnsd_{driver}.so missing (apt-get install {pkg})"
    return None


def rsyslog_version() -> str | None:
    try:
        r = subprocess.run([shutil.which("rsyslogd") or RSYSLOGD, "-v"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(rb"rsyslogd\s+(\S+)", r.stdout)
    return m.group(1).decode() if m else None


# syslog-ng: not installable next to rsyslog as a Debian package (they
# conflict), so we unpack the .debs with dpkg -x into a private root.
SYSLOG_NG_PACKAGES = ("syslog-ng-core", "syslog-ng-scl", "libivykis0", "libnet1", "libpcre3", "libwrap0")
SYSLOG_NG_MODULES = ("libafsocket.so", "libaffile.so", "libsyslogformat.so", "libjson-plugin.so",
                     "libcsvparser.so", "libkvformat.so", "libbasicfuncs.so")
DEFAULT_SYSLOG_NG_ROOT = os.environ.get("LOGGEN_SYSLOG_NG_ROOT", str(HERE.parent.parent / ".cache" / "syslog-ng"))


@dataclass
class SyslogNgInstall:
    root: Path
    binary: Path
    module_path: Path
    ld_library_path: str
    version: str

    def env(self) -> dict[str, str]:
        e = dict(os.environ)
        e.pop("NOTIFY_SOCKET", None)
        if self.ld_library_path:
            e["LD_LIBRARY_PATH"] = self.ld_library_path + (
                ":" + e["LD_LIBRARY_PATH"] if e.get("LD_LIBRARY_PATH") else "")
        return e


def find_syslog_ng(root: str | None = None) -> SyslogNgInstall | None:
    """Locate an unpacked (dpkg -x) or installed syslog-ng.  Search order:
    root arg, $LOGGEN_SYSLOG_NG_ROOT, <this dir>/sng, / (system install)."""
    cands = [root] if root else [DEFAULT_SYSLOG_NG_ROOT, "/"]
    for r in cands:
        rp = Path(r).resolve()
        binary = rp / "usr/sbin/syslog-ng"
        if not os.access(binary, os.X_OK):
            continue
        mods = sorted(glob.glob(str(rp / "usr/lib/syslog-ng/3.*")) +
                      glob.glob(str(rp / "usr/lib/syslog-ng/4.*")))
        mods = [m for m in mods if os.path.isdir(m)]
        if not mods:
            continue
        libdirs = [str(rp / p) for p in ("usr/lib/syslog-ng", "usr/lib/x86_64-linux-gnu",
                                         "lib/x86_64-linux-gnu") if (rp / p).is_dir()]
        ldp = "" if str(rp) == "/" else ":".join(libdirs)
        inst = SyslogNgInstall(rp, binary, Path(mods[-1]), ldp, "")
        try:
            out = subprocess.run([str(binary), "--version"], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, env=inst.env(), timeout=10,
                                 stdin=subprocess.DEVNULL).stdout.decode(errors="replace")
        except (OSError, subprocess.TimeoutExpired):
            continue
        m = re.search(r"Installer-Version:\s*(\S+)", out) or re.search(r"syslog-ng \d+ \((\S+)\)", out)
        if not m:
            continue
        inst.version = m.group(1)
        return inst
    return None


def syslog_ng_available(root: str | None = None) -> str | None:
    inst = find_syslog_ng(root)
    if not inst:
        return ("syslog-ng not found (unpack it with receivers.fetch_syslog_ng(%r), or set "
                "LOGGEN_SYSLOG_NG_ROOT)" % (root or DEFAULT_SYSLOG_NG_ROOT))
    missing = [m for m in SYSLOG_NG_MODULES if not (inst.module_path / m).exists()]
    if missing:
        return "syslog-ng modules missing: " + ", ".join(missing)
    return None


def fetch_syslog_ng(root: str | None = None, packages: Iterable[str] = SYSLOG_NG_PACKAGES,
                    timeout: float = 300) -> SyslogNgInstall:
    """apt-get download the syslog-ng .debs (no install: syslog-ng-core
    conflicts with rsyslog) and dpkg -x them into `root`.  Needs apt lists
    (apt-get update).  Returns the SyslogNgInstall."""
    rootp = Path(root or DEFAULT_SYSLOG_NG_ROOT).resolve()
    rootp.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sng-debs-") as tmp:
        r = subprocess.run(["apt-get", "-o", "APT::Sandbox::User=root", "download", *packages],
                           cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise ReceiverError("apt-get download failed:\n" + r.stdout.decode(errors="replace"))
        for deb in sorted(glob.glob(os.path.join(tmp, "*.deb"))):
            subprocess.run(["dpkg", "-x", deb, str(rootp)], check=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
    inst = find_syslog_ng(str(rootp))
    if not inst:
        raise ReceiverError(f"syslog-ng unpacked into {rootp} but does not run")
    ldd = subprocess.run(["ldd", str(inst.binary), *glob.glob(str(inst.module_path / "*.so"))],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=inst.env(),
                         timeout=60).stdout.decode(errors="replace")
    missing = sorted(set(re.findall(r"(\S+) => not found", ldd)))
    if missing:
        raise ReceiverError("syslog-ng libraries not found: " + ", ".join(missing))
    return inst


# --------------------------------------------------------------------------
# record normalisation
# --------------------------------------------------------------------------
_NIL_KEYS = ("hostname", "appname", "procid", "msgid", "sd")


def normalize_record(rec: dict) -> dict:
    """Make rsyslog and syslog-ng records comparable:
      * "-" (rsyslog, RFC 5424 NILVALUE) and "" (syslog-ng) -> None for
        hostname/appname/procid/msgid/sd,
      * leef.attrs as a dict (rsyslog/liblognorm yields [{key, value}, ...]),
      * sdata always present (maybe {})."""
    for k in _NIL_KEYS:
        if rec.get(k) in ("-", ""):
            rec[k] = None
    rec.setdefault("sdata", {})
    leef = rec.get("leef")
    if isinstance(leef, dict) and isinstance(leef.get("attrs"), list):
        leef["attrs"] = {a.get("key"): a.get("value") for a in leef["attrs"] if isinstance(a, dict)}
    return rec


def read_jsonl(path, normalize: bool = True) -> list[dict]:
    out = []
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return out
    for line in data.split(b"\n")[:-1]:        # ignore a partial last line
        if not line.strip():
            continue
        rec = json.loads(line.decode("utf-8", errors="replace"))
        out.append(normalize_record(rec) if normalize else rec)
    return out


# --------------------------------------------------------------------------
# receiver base
# --------------------------------------------------------------------------
_LIVE: dict[int, _Receiver] = {}


@atexit.register
def _stop_all_at_exit():
    for r in list(_LIVE.values()):
        try:
            r.stop(timeout=5)
        except Exception:
            pass


class _Receiver:
    kind = "?"
    out_name = "out.jsonl"

    def __init__(self, workdir):
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.out_file = self.workdir / self.out_name
        self.pid_file = self.workdir / f"{self.kind}.pid"
        self.stdout_file = self.workdir / "stdout.log"
        self.stderr_file = self.workdir / "stderr.log"
        self.ports: dict[str, int] = {}
        self.proc: subprocess.Popen | None = None

    # subclasses define: listeners() -> {name: proto}, config_text(), command(), env(),
    # check_command()
    def listeners(self) -> dict[str, str]:
        raise NotImplementedError

    def _assign_ports(self, fixed: dict[str, int] | None = None):
        fixed = fixed or {}
        used = set()
        self.ports = {}
        for name, proto in self.listeners().items():
            if name in fixed:
                p = fixed[name]
            else:
                while True:
                    p = free_port(tcp=proto == "tcp", udp=proto == "udp")
                    if p not in used:
                        break
            used.add(p)
            self.ports[name] = p

    def write_config(self) -> Path:
        if not self.ports:
            self._assign_ports()
        self.conf_file.write_text(self.config_text())
        return self.conf_file

    def check_config(self, timeout: float = 30) -> None:
        self.write_config()
        r = subprocess.run(self.check_command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=self.env(), cwd=str(self.workdir), timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise ReceiverError(f"{self.kind} config check failed:\n" +
                                r.stdout.decode(errors="replace"))

    def start(self, timeout: float = 20.0, check: bool = True, retries: int = 2) -> _Receiver:
        if self.proc and self.proc.poll() is None:
            raise ReceiverError("already running")
        for attempt in range(retries + 1):
            self.write_config()
            if check:
                self.check_config()
            for f in (self.pid_file,):
                try:
                    f.unlink()
                except FileNotFoundError:
                    pass
            self._t_start = time.monotonic()
            self._marker_off = self._marker_size()
            with open(self.stdout_file, "ab") as so, open(self.stderr_file, "ab") as se:
                self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=so,
                                             stderr=se, cwd=str(self.workdir), env=self.env(),
                                             start_new_session=True)
            _LIVE[id(self)] = self
            try:
                self.wait_ready(timeout)
                return self
            except ReceiverError:
                err = self.stderr_text()
                self.stop()
                if attempt < retries and "in use" in err:
                    self._assign_ports(getattr(self, "_fixed_ports", None))   # port race: pick new ones
                    continue
                raise
        raise ReceiverError("unreachable")

    # start-up log line that says the daemon is up (rsyslog: "... start" in
    # internal.log, syslog-ng: "syslog-ng starting up" on stderr with -e)
    marker_file_name = "stderr.log"
    marker_text = ""

    def _marker_size(self) -> int:
        try:
            return (self.workdir / self.marker_file_name).stat().st_size
        except FileNotFoundError:
            return 0

    def _marker_seen(self) -> bool:
        if not self.marker_text:
            return True
        try:
            with open(self.workdir / self.marker_file_name, "rb") as f:
                f.seek(self._marker_off)
                return self.marker_text.encode() in f.read()
        except FileNotFoundError:
            return False

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Ready = the child is alive, every listener socket is bound (TCP:
        LISTEN) on 127.0.0.1 and owned by the child (checked in /proc), and
        the daemon's start-up log line was written."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise ReceiverError(f"{self.kind} exited with {self.proc.returncode}:\n"
                                    + self.stderr_text()[-4000:])
            if all(listening(proto, self.ports[name], self.proc.pid)
                   for name, proto in self.listeners().items()) and self._marker_seen():
                return
            if time.monotonic() > deadline:
                raise ReceiverError(f"{self.kind} not listening after {timeout}s on {self.ports}:\n"
                                    + self.stderr_text()[-4000:])
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM to the receiver's own process group, SIGKILL after timeout."""
        _LIVE.pop(id(self), None)
        p = self.proc
        if not p:
            return None
        if p.poll() is None:
            try:
                pg = os.getpgid(p.pid)
            except ProcessLookupError:
                pg = None
            try:
                if pg == p.pid:               # our own group (start_new_session)
                    os.killpg(pg, signal.SIGTERM)
                else:
                    p.terminate()
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    if pg == p.pid:
                        os.killpg(pg, signal.SIGKILL)
                    else:
                        p.kill()
                except ProcessLookupError:
                    pass
                p.wait(5)
        return p.returncode

    @property
    def running(self) -> bool:
        return bool(self.proc) and self.proc.poll() is None

    def stderr_text(self) -> str:
        try:
            return self.stderr_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def records(self, normalize: bool = True) -> list[dict]:
        return read_jsonl(self.out_file, normalize)

    def wait_for_records(self, n: int, timeout: float = 10.0,
                         predicate: Callable[[dict], bool] | None = None,
                         settle: float = 0.0) -> list[dict]:
        """Poll out.jsonl until >= n records (matching predicate) are there,
        then optionally wait `settle` s more (to catch surplus/duplicates)."""
        deadline = time.monotonic() + timeout
        while True:
            recs = [r for r in self.records() if predicate is None or predicate(r)]
            if len(recs) >= n:
                if settle:
                    time.sleep(settle)
                    recs = [r for r in self.records() if predicate is None or predicate(r)]
                return recs
            if time.monotonic() > deadline:
                raise ReceiverError(f"{self.kind}: only {len(recs)}/{n} records after {timeout}s; "
                                    f"stderr tail:\n{self.stderr_text()[-2000:]}")
            if not self.running:
                raise ReceiverError(f"{self.kind} died: {self.stderr_text()[-2000:]}")
            time.sleep(0.05)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# --------------------------------------------------------------------------
# rsyslog
# --------------------------------------------------------------------------
RSYSLOG_CONF_HEAD = """\
# private rsyslogd instance written by receivers.py -- NOT the system logger.
# run: rsyslogd -n -f @@{conf} -i @@{pidfile}
global(
  workDirectory="@@{workdir}"
  maxMessageSize="@@{max_msg_size}"
  processInternalMessages="on"
  parser.escapeControlCharactersOnReceive="off"
  parser.permitSlashInProgramName="on"
@@{tls_global})
@@{modules}
# rsyslog's own messages (start/stop/errors) go to the default ruleset
*.* action(type="omfile" file="@@{workdir}/internal.log")
"""

RSYSLOG_TLS_GLOBAL = """\
  defaultNetstreamDriverCAFile="@@{ca_file}"
  defaultNetstreamDriverCertFile="@@{cert_file}"
  defaultNetstreamDriverKeyFile="@@{key_file}"
"""

RSYSLOG_IN_UDP = ('input(type="imudp" name="udp" address="127.0.0.1" port="@@{port}" '
                  'ruleset="loggen_recv"@@{extra})\n')
# imtcp and imptcp both auto-detect RFC 6587 octet-counting vs LF framing.
RSYSLOG_IN_TCP = ('input(type="imtcp" name="tcp" address="127.0.0.1" port="@@{port}" '
                  'ruleset="loggen_recv")\n')
RSYSLOG_IN_TCP_LF = ('input(type="imptcp" name="tcp_lf" address="127.0.0.1" port="@@{port}" '
                     'ruleset="loggen_recv")\n')
RSYSLOG_IN_TLS = ('input(type="imtcp" name="@@{name}" address="127.0.0.1" port="@@{port}" '
                  'ruleset="loggen_recv" streamDriver.name="@@{driver}" streamDriver.mode="1" '
                  'streamDriver.authMode="@@{authmode}"@@{peers})\n')

RSYSLOG_RULESET = r"""
template(name="loggen_ts" type="string" string="%timereported:::date-rfc3339%")
template(name="loggen_rcvd" type="string" string="%timegenerated:::date-rfc3339%")
template(name="loggen_json" type="string" string="%$.out%\n")

ruleset(name="loggen_recv") {
  set $.out!raw = $rawmsg;      # before mmrm1stspace, which also edits the raw buffer
  # RFC 3164: rsyslog keeps the space after "tag:" in $msg; drop it.
  if $protocol-version == "0" then { action(type="mmrm1stspace") }
  set $.out!receiver = "rsyslog";
  set $.out!input = $inputname;
  set $.out!pri = cnum($pri);
  set $.out!facility = cnum($syslogfacility);
  set $.out!severity = cnum($syslogseverity);
  set $.out!timestamp = exec_template("loggen_ts");
  set $.out!received = exec_template("loggen_rcvd");
  set $.out!hostname = $hostname;
  set $.out!appname = $app-name;
  set $.out!procid = $procid;
  set $.out!msgid = $msgid;
  set $.out!sd = $structured-data;
  set $.out!msg = $msg;
  # structured data -> $!rfc5424-sd!<sd-id>!<param>
  action(type="mmpstrucdata")
  if $!rfc5424-sd != "" then { set $.out!sdata = $!rfc5424-sd; }
  if re_match($msg, "^CEF:[0-9]+[|]") then {
    # liblognorm 2.0.6's cef parser drops the 1st char of the 1st extension key
    # unless a space follows the 7th "|": feed it "header| ext" via a variable.
    set $.cefin = re_extract($msg, "^(CEF:[^|]*[|]([^|]*[|]){6})", 0, 1, "") & " " &
                  re_extract($msg, "^CEF:[^|]*[|]([^|]*[|]){6}(.*)", 0, 2, "");
    action(type="mmnormalize" rulebase="@@{workdir}/cef.rb" variable="$.cefin" path="$!cefp")
    if $!cefp!cef!Name != "" then {
      set $.out!cef = $!cefp!cef;
      set $.out!cef!Version = re_extract($msg, "^CEF:([0-9]+)", 0, 1, "");
    }
  } else if re_match($msg, "^LEEF:") then {
    action(type="mmnormalize" rulebase="@@{workdir}/leef.rb" path="$!leefp")
    if $!leefp!Vendor != "" then {
      set $.out!leef = $!leefp;
      unset $.out!leef!event.tags;
      set $.out!leef!Version = re_extract($msg, "^LEEF:([^|]*)[|]", 0, 1, "");
      if $.out!leef!Version == "1.0" then {
        set $.out!leef!Extension = re_extract($msg, "^LEEF:[^|]*[|]([^|]*[|]){4}(.*)", 0, 2, "");
      } else {
        set $.out!leef!Delimiter = re_extract($msg, "^LEEF:[^|]*[|]([^|]*[|]){4}([^|]*)[|]", 0, 2, "");
        set $.out!leef!Extension = re_extract($msg, "^LEEF:[^|]*[|]([^|]*[|]){5}(.*)", 0, 2, "");
      }
    }
  } else if re_match($msg, "^[{[]") then {
    action(type="mmjsonparse" cookie="" container="$!json")
    if $parsesuccess == "OK" then { set $.out!json = $!json; }
  }
  action(type="omfile" name="loggen_out" file="@@{out_file}" template="loggen_json"
         asyncWriting="off" flushOnTXEnd="on"@@{out_extra})
}
"""

RSYSLOG_CEF_RB = """version=2
rule=cef:%cef:cef%
"""
# LEEF 1.0: no delimiter field, TAB between pairs; LEEF 2.0: delimiter field.
RSYSLOG_LEEF_RB = r"""version=2
rule=leef2:LEEF:%Version:char-to:|%|%Vendor:char-to:|%|%Product:char-to:|%|%ProductVersion:char-to:|%|%EventID:char-to:|%|%Delimiter:char-to:|%|%Extension:rest%
rule=leef2c:LEEF:%Version:char-to:|%|%Vendor:char-to:|%|%Product:char-to:|%|%ProductVersion:char-to:|%|%EventID:char-to:|%|^|%{"name":"attrs","type":"repeat","parser":[{"type":"char-to","name":"key","extradata":"="},{"type":"literal","text":"="},{"type":"char-sep","name":"value","extradata":"^"}],"while":{"type":"literal","text":"^"}}%
rule=leef1:LEEF:1.0|%Vendor:char-to:|%|%Product:char-to:|%|%ProductVersion:char-to:|%|%EventID:char-to:|%|%{"name":"attrs","type":"repeat","parser":[{"type":"char-to","name":"key","extradata":"="},{"type":"literal","text":"="},{"type":"char-sep","name":"value","extradata":"\t"}],"while":{"type":"literal","text":"\t"}}%
"""


class RsyslogReceiver(_Receiver):
    """Private rsyslogd (-n foreground).  Listeners (all 127.0.0.1):
      udp    imudp
      tcp    imtcp   (octet-counted and LF framing auto-detected)
      tcp_lf imptcp  (likewise; named for LF but also takes octet-counted)
      tls    imtcp + streamDriver gtls|ossl, authMode anon        (needs pki)
      mtls   imtcp + streamDriver, authMode x509/certvalid (client cert required)
    """
    kind = "rsyslog"
    marker_file_name = "internal.log"
    marker_text = '"] start'   # '[origin software="rsyslogd" ...] start'

    def __init__(self, workdir, *, udp: bool = True, tcp: bool = True, tcp_lf: bool = False,
                 tls: bool = False, mtls: bool = False, pki: Pki | None = None,
                 tls_driver: str = "gtls", mtls_authmode: str = "x509/certvalid",
                 permitted_peers: Iterable[str] = (), udp_rcvbuf: str | None = None,
                 max_msg_size: int = 65536, ports: dict[str, int] | None = None):
        super().__init__(workdir)
        self.conf_file = self.workdir / "rsyslog.conf"
        self.opts = dict(udp=udp, tcp=tcp, tcp_lf=tcp_lf, tls=tls, mtls=mtls)
        if (tls or mtls) and pki is None:
            raise ValueError("tls/mtls need pki=make_pki(...)")
        self.pki, self.tls_driver = pki, tls_driver
        self.mtls_authmode, self.permitted_peers = mtls_authmode, list(permitted_peers)
        self.udp_rcvbuf, self.max_msg_size = udp_rcvbuf, max_msg_size
        self._fixed_ports = ports
        self._assign_ports(ports)

    def listeners(self) -> dict[str, str]:
        return {k: ("udp" if k == "udp" else "tcp") for k, on in self.opts.items() if on}

    def config_text(self) -> str:
        mods = []
        if self.opts["udp"]:
            mods.append('module(load="imudp")')
        if self.opts["tcp"] or self.opts["tls"] or self.opts["mtls"]:
            mods.append('module(load="imtcp" maxSessions="2000")')
        if self.opts["tcp_lf"]:
            mods.append('module(load="imptcp")')
        mods += ['module(load="mmpstrucdata")', 'module(load="mmjsonparse")',
                 'module(load="mmnormalize")', 'module(load="mmrm1stspace")']
        tls_global = ""
        if self.opts["tls"] or self.opts["mtls"]:
            tls_global = render(RSYSLOG_TLS_GLOBAL, ca_file=self.pki.ca_cert,
                                cert_file=self.pki.server_cert, key_file=self.pki.server_key)
        text = render(RSYSLOG_CONF_HEAD, conf=self.conf_file, pidfile=self.pid_file,
                      workdir=self.workdir, max_msg_size=self.max_msg_size,
                      tls_global=tls_global, modules="\n".join(mods))
        if self.opts["udp"]:
            extra = f' rcvbufSize="{self.udp_rcvbuf}"' if self.udp_rcvbuf else ""
            text += render(RSYSLOG_IN_UDP, port=self.ports["udp"], extra=extra)
        if self.opts["tcp"]:
            text += render(RSYSLOG_IN_TCP, port=self.ports["tcp"])
        if self.opts["tcp_lf"]:
            text += render(RSYSLOG_IN_TCP_LF, port=self.ports["tcp_lf"])
        if self.opts["tls"]:
            text += render(RSYSLOG_IN_TLS, name="tls", port=self.ports["tls"], driver=self.tls_driver,
                           authmode="anon", peers="")
        if self.opts["mtls"]:
            peers = ""
            if self.permitted_peers:
                peers = ' permittedPeer=[{}]'.format(",".join(f'"{p}"' for p in self.permitted_peers))
            text += render(RSYSLOG_IN_TLS, name="mtls", port=self.ports["mtls"],
                           driver=self.tls_driver, authmode=self.mtls_authmode, peers=peers)
        text += render(RSYSLOG_RULESET, workdir=self.workdir, out_file=self.out_file, out_extra="")
        (self.workdir / "cef.rb").write_text(RSYSLOG_CEF_RB)
        (self.workdir / "leef.rb").write_text(RSYSLOG_LEEF_RB)
        return text

    def _exe(self) -> str:
        return shutil.which("rsyslogd") or RSYSLOGD

    def command(self) -> list[str]:
        return [self._exe(), "-n", "-f", str(self.conf_file), "-i", str(self.pid_file)]

    def check_command(self) -> list[str]:
        return [self._exe(), "-N1", "-f", str(self.conf_file)]

    def env(self) -> dict[str, str]:
        e = dict(os.environ)
        e.pop("NOTIFY_SOCKET", None)        # never talk to a service manager
        return e


RSYSLOG_RELAY_CONF = """\
# private rsyslogd UDP relay written by receivers.py -- NOT the system logger.
global(workDirectory="@@{workdir}" maxMessageSize="@@{max_msg_size}"
       processInternalMessages="on" parser.escapeControlCharactersOnReceive="off")
module(load="imudp"@@{imudp_mod})
module(load="impstats" interval="@@{stats_interval}" format="json" resetCounters="off"
       log.file="@@{workdir}/stats.log" log.syslog="off")
*.* action(type="omfile" file="@@{workdir}/internal.log")
input(type="imudp" name="relay_in" address="127.0.0.1" port="@@{port}" rcvbufSize="@@{rcvbuf}"
      ruleset="relay"@@{ratelimit})
template(name="relay_raw" type="string" string="%rawmsg%")
ruleset(name="relay") {
  action(type="omfwd" name="relay_out" target="127.0.0.1" port="@@{target_port}"
         protocol="@@{target_proto}"@@{fwd_extra} template="relay_raw")
}
"""


class RsyslogRelay(_Receiver):
    """rsyslogd receiving UDP on 127.0.0.1 with a deliberately small socket
    receive buffer (imudp rcvbufSize) and forwarding every message verbatim
    (%rawmsg%) with omfwd to 127.0.0.1:target_port over UDP, or TCP with
    octet-counted framing.  impstats writes counters to <workdir>/stats.log.
    ``ratelimit=N`` turns on imudp's own rate limiting, N messages a second on
    average, the rest discarded: a capacity that does not move with the load of
    the machine, as an ingest licence's does not.  rsyslog's window is whole
    seconds, both ends included (ratelimit.c: a new window when now > begin +
    interval), so interval 1 is two seconds and lets 2 N through."""
    kind = "rsyslog-relay"
    marker_file_name = "internal.log"
    marker_text = '"] start'
    out_name = "stats.log"

    def __init__(self, workdir, target_port: int, *, target_proto: str = "udp",
                 rcvbuf: str = "64k", port: int | None = None, max_msg_size: int = 65536,
                 stats_interval: int = 1, imudp_threads: int = 1, batch_size: int = 32,
                 ratelimit: int | None = None):
        super().__init__(workdir)
        self.conf_file = self.workdir / "rsyslog-relay.conf"
        self.ratelimit = ratelimit
        self.target_port, self.target_proto = target_port, target_proto
        self.rcvbuf, self.max_msg_size, self.stats_interval = rcvbuf, max_msg_size, stats_interval
        self.imudp_threads, self.batch_size = imudp_threads, batch_size
        self._fixed_ports = {"udp": port} if port else None
        self._assign_ports(self._fixed_ports)

    def listeners(self):
        return {"udp": "udp"}

    def config_text(self) -> str:
        fwd_extra = ""
        if self.target_proto == "tcp":
            fwd_extra = (' TCP_Framing="octet-counted" queue.type="LinkedList" queue.size="100000"'
                         ' action.resumeRetryCount="-1"')
        return render(RSYSLOG_RELAY_CONF, workdir=self.workdir, max_msg_size=self.max_msg_size,
                      port=self.ports["udp"], rcvbuf=self.rcvbuf, target_port=self.target_port,
                      target_proto=self.target_proto, fwd_extra=fwd_extra,
                      stats_interval=self.stats_interval,
                      ratelimit=(f' ratelimit.interval="1" ratelimit.burst="{2 * self.ratelimit}"'
                                 if self.ratelimit else ""),
                      imudp_mod=f' threads="{self.imudp_threads}" batchSize="{self.batch_size}"')

    command = RsyslogReceiver.command
    check_command = RsyslogReceiver.check_command
    env = RsyslogReceiver.env
    _exe = RsyslogReceiver._exe

    def kernel_drops(self) -> int:
        return udp_socket_drops(self.ports["udp"])

    def records(self, normalize: bool = False) -> list[dict]:
        """impstats lines (JSON after the timestamp/tag prefix)."""
        out = []
        try:
            for line in self.out_file.read_text(errors="replace").splitlines():
                i = line.find("{")
                if i >= 0:
                    try:
                        out.append(json.loads(line[i:]))
                    except ValueError:
                        pass
        except FileNotFoundError:
            pass
        return out


# --------------------------------------------------------------------------
# syslog-ng
# --------------------------------------------------------------------------
SYSLOG_NG_CONF_HEAD = """\
@version: @@{config_version}
# private syslog-ng instance written by receivers.py -- NOT the system logger.
# run: syslog-ng -F -f @@{conf} --persist-file ... --pidfile ... --control ... --module-path ...
options {
  keep-hostname(yes); chain-hostnames(no); use-dns(no); use-fqdn(no); dns-cache(no);
  keep-timestamp(yes); frac-digits(6); stats-freq(0); log-msg-size(@@{max_msg_size});
  flush-lines(1); time-reopen(1); create-dirs(yes);
};
"""

# syslog(): RFC 5424 (falls back to RFC 3164); on TCP/TLS it wants RFC 6587
#           octet-counting only (LF-framed input -> "Invalid frame header").
# network(flags(syslog-protocol)): LF framing, RFC 5424 with 3164 fallback.
SYSLOG_NG_SRC_UDP = ('source s_udp { syslog(ip("127.0.0.1") port(@@{port}) transport("udp")'
                     ' flags(store-raw-message)@@{extra}); };\n')
SYSLOG_NG_SRC_TCP = ('source s_tcp { syslog(ip("127.0.0.1") port(@@{port}) transport("tcp")'
                     ' flags(store-raw-message) max-connections(@@{maxconn})'
                     ' log-iw-size(@@{iw})); };\n')
SYSLOG_NG_SRC_TCP_LF = ('source s_tcp_lf { network(ip("127.0.0.1") port(@@{port}) transport("tcp")'
                        ' flags(syslog-protocol, store-raw-message) max-connections(@@{maxconn})'
                        ' log-iw-size(@@{iw})); };\n')
SYSLOG_NG_SRC_TLS = ('source s_@@{name} { syslog(ip("127.0.0.1") port(@@{port}) transport("tls")'
                     ' flags(store-raw-message) max-connections(@@{maxconn}) log-iw-size(@@{iw})'
                     ' tls(key-file("@@{key_file}") cert-file("@@{cert_file}")'
                     ' ca-file("@@{ca_file}") peer-verify(@@{peer_verify}))); };\n')

SYSLOG_NG_BODY = r"""
parser p_cef {
  csv-parser(columns("cef.Version", "cef.DeviceVendor", "cef.DeviceProduct", "cef.DeviceVersion",
                     "cef.SignatureID", "cef.Name", "cef.Severity", ".tmp.cefext")
             delimiters(chars("|")) flags(greedy, escape-none) quote-pairs(""));
  kv-parser(prefix("cef.Extensions.") template("${.tmp.cefext}"));
};
parser p_leef2 {
  csv-parser(columns("leef.Version", "leef.Vendor", "leef.Product", "leef.ProductVersion",
                     "leef.EventID", "leef.Delimiter", "leef.Extension")
             delimiters(chars("|")) flags(greedy, escape-none) quote-pairs(""));
  kv-parser(prefix("leef.attrs.") pair-separator("^") template("${leef.Extension}"));
};
parser p_leef1 {
  csv-parser(columns("leef.Version", "leef.Vendor", "leef.Product", "leef.ProductVersion",
                     "leef.EventID", "leef.Extension")
             delimiters(chars("|")) flags(greedy, escape-none) quote-pairs(""));
  kv-parser(prefix("leef.attrs.") pair-separator("\t") template("${leef.Extension}"));
};
parser p_json { json-parser(prefix("json.")); };
rewrite r_cefver { subst("^CEF:", "", value("cef.Version")); };
rewrite r_leefver { subst("^LEEF:", "", value("leef.Version")); };

destination d_out {
  file("@@{out_file}" flush-lines(1) log-fifo-size(@@{fifo})
       template("$(format-json
          receiver=syslog-ng input=$(substr \"$SOURCE\" 2)
          pri=int($PRI) facility=int($FACILITY_NUM) severity=int($SEVERITY_NUM)
          timestamp=$ISODATE received=$R_ISODATE hostname=$HOST appname=$PROGRAM procid=$PID
          msgid=$MSGID sd=$SDATA msg=$MESSAGE raw=$RAWMSG
          --key .SDATA.* --rekey .SDATA.* --shift 7 --add-prefix sdata.
          --key cef.* --key leef.* --key json.*)\n"));
};

log {
@@{sources}
  junction {
    channel { filter { message("^CEF:[0-9]+[|]"); }; parser(p_cef); rewrite(r_cefver); flags(final); };
    channel { filter { message("^LEEF:2"); }; parser(p_leef2); rewrite(r_leefver); flags(final); };
    channel { filter { message("^LEEF:1"); }; parser(p_leef1); rewrite(r_leefver); flags(final); };
    channel { filter { message("^[{[]"); }; parser(p_json); flags(final); };
    channel { flags(final); };     # everything else, and bodies a parser rejected
  };
  destination(d_out);
  flags(flow-control);             # TCP senders get back-pressure instead of drops
};
"""


class SyslogNgReceiver(_Receiver):
    """Private syslog-ng (-F foreground), e.g. unpacked from the .debs with
    fetch_syslog_ng().  Listeners (all 127.0.0.1):
      udp    syslog(transport(udp))          RFC 5424 + RFC 3164 fallback
      tcp    syslog(transport(tcp))          RFC 6587 octet-counting ONLY
      tcp_lf network(transport(tcp) flags(syslog-protocol))  LF framing only
      tls    syslog(transport(tls)) peer-verify(optional-untrusted)
      mtls   syslog(transport(tls)) peer-verify(required-trusted)
    """
    kind = "syslog-ng"
    marker_text = "syslog-ng starting up"

    def __init__(self, workdir, *, udp: bool = True, tcp: bool = True, tcp_lf: bool = False,
                 tls: bool = False, mtls: bool = False, pki: Pki | None = None,
                 install: SyslogNgInstall | None = None, root: str | None = None,
                 udp_rcvbuf: int | None = None, max_msg_size: int = 65536,
                 max_connections: int = 1000, fifo: int = 100000,
                 ports: dict[str, int] | None = None):
        super().__init__(workdir)
        self.install = install or find_syslog_ng(root)
        if not self.install:
            raise ReceiverError(syslog_ng_available(root) or "syslog-ng not found")
        self.conf_file = self.workdir / "syslog-ng.conf"
        self.persist_file = self.workdir / "syslog-ng.persist"
        self.control_file = self.workdir / "syslog-ng.ctl"
        self.opts = dict(udp=udp, tcp=tcp, tcp_lf=tcp_lf, tls=tls, mtls=mtls)
        if (tls or mtls) and pki is None:
            raise ValueError("tls/mtls need pki=make_pki(...)")
        self.pki, self.udp_rcvbuf, self.max_msg_size = pki, udp_rcvbuf, max_msg_size
        self.max_connections, self.fifo = max_connections, fifo
        self._fixed_ports = ports
        self._assign_ports(ports)

    def listeners(self) -> dict[str, str]:
        return {k: ("udp" if k == "udp" else "tcp") for k, on in self.opts.items() if on}

    def config_text(self) -> str:
        cv = ".".join(self.install.version.split(".")[:2])
        text = render(SYSLOG_NG_CONF_HEAD, config_version=cv, conf=self.conf_file,
                      max_msg_size=self.max_msg_size)
        mc, iw = self.max_connections, self.max_connections * 100
        srcs = []
        if self.opts["udp"]:
            extra = f" so-rcvbuf({self.udp_rcvbuf})" if self.udp_rcvbuf else ""
            text += render(SYSLOG_NG_SRC_UDP, port=self.ports["udp"], extra=extra)
            srcs.append("s_udp")
        if self.opts["tcp"]:
            text += render(SYSLOG_NG_SRC_TCP, port=self.ports["tcp"], maxconn=mc, iw=iw)
            srcs.append("s_tcp")
        if self.opts["tcp_lf"]:
            text += render(SYSLOG_NG_SRC_TCP_LF, port=self.ports["tcp_lf"], maxconn=mc, iw=iw)
            srcs.append("s_tcp_lf")
        for name, verify in (("tls", "optional-untrusted"), ("mtls", "required-trusted")):
            if self.opts[name]:
                text += render(SYSLOG_NG_SRC_TLS, name=name, port=self.ports[name], maxconn=mc,
                               iw=iw, key_file=self.pki.server_key, cert_file=self.pki.server_cert,
                               ca_file=self.pki.ca_cert, peer_verify=verify)
                srcs.append("s_" + name)
        text += render(SYSLOG_NG_BODY, out_file=self.out_file, fifo=self.fifo,
                       sources="\n".join(f"  source({s});" for s in srcs))
        return text

    def _base(self) -> list[str]:
        return [str(self.install.binary), f"--module-path={self.install.module_path}",
                "-f", str(self.conf_file)]

    def command(self) -> list[str]:
        return self._base() + ["-F", "-e", f"--persist-file={self.persist_file}",
                               f"--pidfile={self.pid_file}", f"--control={self.control_file}"]

    def check_command(self) -> list[str]:
        return self._base() + ["-s"]

    def env(self) -> dict[str, str]:
        return self.install.env()

    def ctl(self, *args: str, timeout: float = 10) -> str:
        """syslog-ng-ctl against this instance's control socket, e.g. ctl("stats")."""
        exe = self.install.root / "usr/sbin/syslog-ng-ctl"
        r = subprocess.run([str(exe), *args, "-c", str(self.control_file)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=self.env(), timeout=timeout,
                           stdin=subprocess.DEVNULL)
        return r.stdout.decode(errors="replace")


if __name__ == "__main__":
    print("rsyslog:", rsyslog_available() or f"available {rsyslog_version()}")
    for drv in ("gtls", "ossl"):
        print(f"rsyslog tls {drv}:", rsyslog_tls_available(drv) or "available")
    inst = find_syslog_ng()
    print("syslog-ng:", syslog_ng_available() or f"available {inst.version} at {inst.root}")
