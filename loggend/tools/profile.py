"""``loggend profile``: where a live worker (or sink, or the web process) spends its time.

Every child of a run names itself (``loggend-w3`` or ``loggend-p1``, ``loggend-sink0``, ``loggend-web``; see
``loggend.engine.procsetup``), so the process is found by name in ``/proc`` (among the children of
``--pid`` when several runs are up). The sampling is py-spy's: it reads the interpreter's stacks
from outside (ptrace), so the worker runs unmodified and pays nothing when nobody profiles it;
``--nonblocking`` keeps it from pausing the worker while it samples. The output is a flame graph
(SVG), speedscope JSON or collapsed stacks (``raw``), or with ``--dump`` the stacks right now.

Why py-spy and not our own: an external sampler needs no signal handler or timer in the hot
path and sees native frames too; writing one is out of proportion (see pyproject's ``dev`` extra).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from loggend.errors import EXIT_FAILURE, EXIT_OK, UsageError

PROC = Path("/proc")
FORMATS = ("flamegraph", "speedscope", "raw")
SUFFIXES = {"flamegraph": ".svg", "speedscope": ".json", "raw": ".txt"}
SAMPLE_RATE = 250                 # samples per second


SUPERVISOR = "loggend-run"        # the name `loggend run` gives itself


def process_name(worker: int | None, name: str | None, supervisor: bool) -> str:
    if supervisor:
        return SUPERVISOR
    if name:
        return name
    return f"loggend-w{worker}"


def process_comm(pid: int, proc: Path = PROC) -> str:
    try:
        return (proc / str(pid) / "comm").read_text().strip()
    except OSError:
        return f"pid {pid}"


def tasks(parent: int | None = None, proc: Path = PROC) -> list[tuple[int, str]]:
    """(pid, task name) of every process whose parent (or itself) is ``parent``, when given."""
    out = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent is None or parent in (ppid, int(entry.name)):
            out.append((int(entry.name), comm))
    return sorted(out)


def find(name: str, parent: int | None = None, proc: Path = PROC) -> list[int]:
    """PIDs whose task name is ``name`` and whose parent (or itself) is ``parent``, when given."""
    return [pid for pid, comm in tasks(parent, proc) if comm == name]


def served_by(worker: int, parent: int | None) -> tuple[int | None, str]:
    """The PID of the process that serves ``worker``, as the run says through its control socket
    (``loggend ctl status``); (None, why) when it cannot be asked. A worker the run does not have
    is a UsageError; one whose process is down right now is (0, why)."""
    from loggend.control.ctlsocket import ControlError, find_socket, request
    try:
        reply = request(find_socket(parent), "status")
    except ControlError as err:
        return None, str(err)
    status = reply.get("status") if reply.get("ok") else None
    if not isinstance(status, dict) or not isinstance(status.get("worker_pids"), list):
        return None, "the run's status does not list its worker processes (an older loggend?)"
    pids = status["worker_pids"]
    if worker >= len(pids):
        raise UsageError(f"--worker: {worker} is not a worker of the run (pid {status.get('pid')}): it has "
                         f"{len(pids)}, 0-{len(pids) - 1}")
    return int(pids[worker]), f"worker {worker} is not running right now (its process is down or restarting)"


def worker_process(worker: int, parent: int | None = None, proc: Path = PROC) -> str:
    """The name of the process that serves ``worker``: its own (loggend-w<worker>) when each worker
    has a process; else process p of P (``worker_processes``), named loggend-p<p>, serves workers
    p, p+P, p+2P..., so worker 7 of a run in 2 processes is in loggend-p1."""
    name = f"loggend-w{worker}"
    if find(name, parent, proc):
        return name
    shared = [int(m[1]) for m in (re.fullmatch(r"loggend-p(\d+)", comm) for _, comm in tasks(parent, proc)) if m]
    return f"loggend-p{worker % (max(shared) + 1)}" if shared else name


def profile(name: str, label: str, seconds: int, out: str, fmt: str, dump: bool, parent: int | None,
            pid: int | None = None) -> int:
    """Sample process ``name`` (``label`` is the flag that named it, for errors), the one with
    ``pid`` when the caller knows it."""
    if not dump:
        folder = os.path.dirname(os.path.abspath(out))
        if not os.access(folder, os.W_OK):
            raise UsageError(f"--output: cannot write {out!r}: {folder} is not a writable folder")
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not os.access(pyspy, os.X_OK):
        print("loggend: profile needs py-spy (`pip install py-spy`, or `make build-dev`)", file=sys.stderr)
        return EXIT_FAILURE
    pids = [pid] if pid else find(name, parent)
    if not pids:
        where = f" under pid {parent}" if parent else ""
        print(f"loggend: {label}: no running process named {name!r}{where} (is `loggend run` up? "
              f"`ps -o pid,comm` lists loggend-run, loggend-w0... or loggend-p0..., loggend-sink0..., loggend-web)",
              file=sys.stderr)
        return EXIT_FAILURE
    if len(pids) > 1:
        raise UsageError(f"{label}: {len(pids)} processes are named {name!r} (pids "
                         f"{', '.join(map(str, pids))}); say which run with --pid SUPERVISOR_PID")
    pid = pids[0]
    if dump:
        cmd = [pyspy, "dump", "--pid", str(pid)]
    else:                             # --idle: a waiting process is worth seeing too (and has samples)
        cmd = [pyspy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(SAMPLE_RATE),
               "--format", fmt, "--output", out, "--nonblocking", "--idle"]
    print(f"loggend: profiling {name} (pid {pid})" + ("" if dump else f" for {seconds} s into {out}"),
          file=sys.stderr, flush=True)
    result = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, RUST_BACKTRACE="0"))
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["no output"]
        why = next((line for line in lines if line.startswith("Error")), lines[0])
        print(f"loggend: py-spy failed on pid {pid}: {why}", file=sys.stderr)
        return EXIT_FAILURE
    if dump:
        print(result.stdout, end="")
    return EXIT_OK


def default_output(name: str, fmt: str) -> str:
    return f"profile-{name}{SUFFIXES[fmt]}"
