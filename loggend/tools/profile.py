"""``loggend profile``: where a live worker (or sink, or the web process) spends its time.

Every child of a run names itself (``loggend-w3``, ``loggend-sink0``, ``loggend-web``; see
``loggend.engine.process``), so the process is found by name in ``/proc`` (among the children of
``--pid`` when several runs are up). The sampling is py-spy's: it reads the interpreter's stacks
from outside (ptrace), so the worker runs unmodified and pays nothing when nobody profiles it;
``--nonblocking`` keeps it from pausing the worker while it samples. The output is a flame graph
(SVG), speedscope JSON or collapsed stacks (``raw``), or with ``--dump`` the stacks right now.

Why py-spy and not our own: an external sampler needs no signal handler or timer in the hot
path and sees native frames too; writing one is out of proportion (see pyproject's ``dev`` extra).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from loggend.errors import EXIT_FAILURE, EXIT_OK, UsageError

PROC = Path("/proc")
FORMATS = ("flamegraph", "speedscope", "raw")
SUFFIXES = {"flamegraph": ".svg", "speedscope": ".json", "raw": ".txt"}
SAMPLE_RATE = 250                 # samples per second


def process_name(worker: int | None, name: str | None) -> str:
    if name:
        return name
    return f"loggend-w{worker}"


def find(name: str, parent: int | None = None, proc: Path = PROC) -> list[int]:
    """PIDs whose task name is ``name`` (and whose parent is ``parent``, when given)."""
    out = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            if comm != name:
                continue
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent is None or ppid == parent:
            out.append(int(entry.name))
    return sorted(out)


def profile(name: str, seconds: float, out: str, fmt: str, dump: bool, parent: int | None) -> int:
    pids = find(name, parent)
    if not pids:
        where = f" among the children of pid {parent}" if parent else ""
        raise UsageError(f"--worker: no running process named {name!r}{where} (is `loggend run` up?)")
    if len(pids) > 1:
        raise UsageError(f"--worker: {len(pids)} processes are named {name!r} (pids "
                         f"{', '.join(map(str, pids))}); say which run with --pid SUPERVISOR_PID")
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not os.access(pyspy, os.X_OK):
        print("loggend: profile needs py-spy (`pip install py-spy`, or `make build-dev`)", file=sys.stderr)
        return EXIT_FAILURE
    pid = pids[0]
    if dump:
        cmd = [pyspy, "dump", "--pid", str(pid)]
    else:
        cmd = [pyspy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate",
               str(SAMPLE_RATE), "--format", fmt, "--output", out, "--nonblocking"]
    print(f"loggend: profiling {name} (pid {pid})" + ("" if dump else f" for {seconds:g} s into {out}"),
          file=sys.stderr, flush=True)
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        why = (result.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"loggend: py-spy failed on pid {pid}: {why}", file=sys.stderr)
        return EXIT_FAILURE
    if dump:
        print(result.stdout, end="")
    return EXIT_OK


def default_output(name: str, fmt: str) -> str:
    return f"profile-{name}{SUFFIXES[fmt]}"
