"""deploy/Containerfile, checked as far as a machine without a container engine allows.

* The file: a two-stage build from the wheel only, an unprivileged numeric USER, the exec-form
  ENTRYPOINT (loggend itself is PID 1, no shell in between), a health check on /healthz, SIGTERM
  to stop, and a build context of nothing but the wheel.
* The image's process: the wheel, built as ``make build`` builds it, installed into a fresh venv
  of the system's Python as the image's /opt/loggen, run as PID 1 of a new PID namespace
  (``unshare --pid --fork --mount-proc``) as uid 10001 with no capabilities and a read-only root,
  as the Kubernetes manifests run it. SIGTERM gives the summary and exit status 0, an orphan
  re-parented to it is reaped, a bad flag is one line and exit 2.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loggend import __version__
from loggend.config import ENV_KEYS, ENV_PREFIX
from tests.support.processes import ROOT, LoopbackReceiver, wait_until

CONTAINERFILE = ROOT / "deploy" / "Containerfile"
IGNORE = ROOT / ".containerignore"
IMAGE_UID = 10001
SYSTEM_PYTHON = "/usr/bin/python3"          # the image's Python is not under /root: neither is this one


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments left out."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = instructions(CONTAINERFILE.read_text())
    last_from = max(i for i, (k, _) in enumerate(steps) if k == "FROM")
    return steps[last_from:]


def test_the_image_is_built_from_the_wheel_in_two_stages():
    steps = instructions(CONTAINERFILE.read_text())
    froms = [rest for k, rest in steps if k == "FROM"]
    assert len(froms) == 2 and froms[0].endswith(" AS build")
    assert all(":" in f.split()[0] for f in froms)                    # pinned tags, not :latest by default
    copies = [rest for k, rest in steps if k == "COPY"]
    assert "dist/loggend-*.whl /wheels/" in copies                    # what `make build` leaves in dist/
    wheel = f"loggend-{__version__}-py3-none-any.whl"
    assert fnmatch.fnmatch(f"dist/{wheel}", "dist/loggend-*.whl")
    assert not any(k == "ADD" for k, _ in steps)                      # nothing fetched by URL
    assert any(k == "COPY" and rest.startswith("--from=build /opt/loggen") for k, rest in final_stage())


def test_loggend_is_pid_1_as_an_unprivileged_user():
    stage = dict(final_stage()[1:])
    assert json.loads(stage["ENTRYPOINT"]) == ["loggend"]             # exec form: no /bin/sh -c as PID 1
    cmd = json.loads(stage["CMD"])
    assert cmd[0] == "run" and "--config" in cmd
    user = stage["USER"].split(":")
    assert all(part.isdigit() and int(part) == IMAGE_UID for part in user)     # numeric: runAsNonRoot can check it
    assert stage["STOPSIGNAL"] == "SIGTERM"
    assert "PYTHONDONTWRITEBYTECODE=1" in stage["ENV"]                # a read-only root stays untouched
    assert "8080/tcp" in stage["EXPOSE"]


def test_the_health_check_asks_the_web_process():
    stage = dict(final_stage()[1:])
    options, _, command = stage["HEALTHCHECK"].partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    argv = json.loads(command)
    assert argv[0] == "/opt/loggen/bin/python" and "HEALTH_URL" in argv[-1]
    assert image_env()["HEALTH_URL"] == "http://127.0.0.1:8080/healthz"


def image_env() -> dict[str, str]:
    """The final stage's ENV, as the image's processes see it."""
    env: dict[str, str] = {}
    for keyword, rest in final_stage():
        if keyword == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(rest))
    return env


def test_the_image_sets_no_variable_loggend_would_refuse():
    """Every LOGGEN_* variable is a setting to loggend, and an unknown one is refused at start: the
    image must set none it does not mean as one (the running test below uses the image's ENV)."""
    assert not [name for name in image_env() if name.startswith(ENV_PREFIX) and name not in ENV_KEYS]


def test_the_build_context_is_only_the_wheel():
    lines = [line for line in IGNORE.read_text().splitlines() if line and not line.startswith("#")]
    assert lines == ["*", "!dist/loggend-*.whl"]


# --- the process, as the image runs it ------------------------------------------------------------

def missing_parts() -> str | None:
    if os.geteuid() != 0:
        return "needs root: unshare --pid and setpriv (as the image's uid)"
    for tool in ("unshare", "setpriv", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} not found (util-linux)"
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"{SYSTEM_PYTHON} not found (the image's venv needs a Python that uid {IMAGE_UID} can run)"
    return None


@pytest.fixture(scope="module")
def image_root() -> Iterator[Path]:
    """A directory laid out as the image: opt/loggen is a venv with the wheel and its dependencies."""
    reason = missing_parts()
    if reason:
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="loggen-image-"))
    root.chmod(0o755)
    try:
        build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w",
                                str(root / "dist"), str(ROOT)], capture_output=True, text=True, timeout=300)
        if build.returncode != 0:
            pytest.skip(f"cannot build the wheel (pip wheel): {build.stderr.strip().splitlines()[-1:]}")
        (wheel,) = (root / "dist").glob("loggend-*.whl")
        assert wheel.name == f"loggend-{__version__}-py3-none-any.whl"
        venv = root / "opt" / "loggen"
        subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(venv)], check=True, timeout=120)
        install = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--no-compile", str(wheel)],
                                 capture_output=True, text=True, timeout=600)
        if install.returncode != 0:
            pytest.skip(f"cannot install the wheel's dependencies: {install.stderr.strip().splitlines()[-1:]}")
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def as_the_image(root: Path, *args: str) -> subprocess.Popen[str]:
    """``loggend ARGS`` as PID 1 of a new PID and mount namespace, uid 10001, no capabilities, root read-only."""
    venv = root / "opt" / "loggen"
    env = {**image_env(), "PATH": f"{venv}/bin:/usr/bin:/bin"}                 # the image's ENV, our venv's PATH
    script = ('mount -o remount,bind,ro / && exec setpriv --reuid {uid} --regid {uid} --clear-groups '
              '--inh-caps=-all --bounding-set=-all --no-new-privs -- env -i {env} "$@"').format(
        uid=IMAGE_UID, env=" ".join(shlex.quote(f"{k}={v}") for k, v in env.items()))
    return subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "--", "/bin/sh", "-c", script, "sh",
                             str(venv / "bin" / "loggend"), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def status(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


@pytest.mark.slow
@pytest.mark.root
def test_as_pid_1_sigterm_gives_the_summary_and_exit_0_and_orphans_are_reaped(image_root):
    receiver = LoopbackReceiver()
    proc = as_the_image(image_root, "run", "--config", "/dev/null", "--target", f"127.0.0.1:{receiver.port}",
                        "--workers", "2", "--rate", "2000", "--dashboard", "off", "--control-socket", "off")
    try:
        (init,) = wait_until(lambda: children(proc.pid), timeout=10, what="the namespace's PID 1")
        wait_until(lambda: status(init).get("Name") == "loggend-run", timeout=20, what="loggend as PID 1")
        s = status(init)
        assert s["NSpid"].split()[-1] == "1"                           # PID 1 of its namespace
        assert s["Uid"].split()[0] == str(IMAGE_UID) and s["CapEff"] == "0" * 16
        wait_until(lambda: len(receiver.datagrams) > 1000, timeout=20, what="the workers sending")
        workers = set(children(init))
        assert len(workers) == 2                                       # its workers
        # an orphan in the namespace is re-parented to PID 1: it must be reaped, not left a zombie
        subprocess.run(["nsenter", "--target", str(init), "--pid", "--mount", "--", "/bin/sh", "-c",
                        "sleep 2 & exit 0"], check=True, timeout=10)
        orphans = set(children(init)) - workers
        assert orphans, "the orphan was not re-parented to loggend"
        wait_until(lambda: not orphans & set(children(init)), timeout=15, what="the orphan reaped")
        assert set(children(init)) == workers
        os.kill(init, signal.SIGTERM)                                  # what `kubectl delete` / podman stop send
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        receiver.close()
    assert proc.returncode == 0, err
    assert "summary:" in out and "restarts    0" in out, out
    assert "Read-only file system" not in err and "Traceback" not in err, err
    assert not any(alive_zombie(p) for p in orphans)


def alive_zombie(pid: int) -> bool:
    return status(pid).get("State", "").startswith("Z")


@pytest.mark.slow
@pytest.mark.root
def test_as_pid_1_a_timed_run_ends_by_itself_with_0_and_bad_input_is_exit_2(image_root):
    receiver = LoopbackReceiver()
    try:
        proc = as_the_image(image_root, "run", "--config", "/dev/null", "--target", f"127.0.0.1:{receiver.port}",
                            "--workers", "1", "--rate", "1000", "--duration", "1s", "--dashboard", "off")
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "sent        1,000 events" in out
        assert "running without live control" in err       # read-only, no /tmp: no control socket, and it goes on
        assert len(receiver.wait_for(1000)) == 1000
    finally:
        receiver.close()
    started = time.monotonic()
    bad = as_the_image(image_root, "run", "--config", "/dev/null", "--instance", "3/3")
    out, err = bad.communicate(timeout=60)
    assert bad.returncode == 2 and out == ""
    assert err.strip().splitlines() == ["loggend: error: --instance: '3/3' is not allowed; expected I/N with "
                                        "0 <= I < N <= 1000, e.g. 2/3 (the last of 0/3, 1/3, 2/3)"]
    assert time.monotonic() - started < 30
