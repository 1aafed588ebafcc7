"""`loggend tune`: apply saves first, restore puts back exactly, refusal changes nothing."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from loggend.control.tuning import TUNING, Tuner, TuningError
from tests.support.processes import ROOT, run_loggend

KEYS = list(TUNING)


def fake_sysctl(tmp_path: Path, values: dict[str, str] | None = None) -> Path:
    root = tmp_path / "sys"
    for key in KEYS:
        path = root.joinpath(*key.split("."))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text((values or {}).get(key, "1000") + "\n")
    return root


def test_apply_then_restore_round_trip_on_a_scratch_tree(tmp_path):
    before = {k: f"{1000 + i}" for i, k in enumerate(KEYS)} | {"net.ipv4.ip_local_port_range": "32768\t60999"}
    root = fake_sysctl(tmp_path, before)
    state = tmp_path / "state.json"
    args = ("--sysctl-root", str(root), "--state", str(state))
    applied = run_loggend("tune", "apply", *args)
    assert applied.returncode == 0, applied.stderr
    tuner = Tuner(str(root), str(state))
    assert {k: tuner.read(k) for k in KEYS} == TUNING
    assert run_loggend("tune", "apply", *args).returncode == 0          # again: the first saved state is kept
    shown = run_loggend("tune", "show", *args).stdout
    assert "net.core.rmem_max" in shown and "268435456" in shown
    restored = run_loggend("tune", "restore", *args)
    assert restored.returncode == 0 and "restored (6 changed)" in restored.stdout
    assert {k: tuner.read(k) for k in KEYS} == {k: " ".join(v.split()) for k, v in before.items()}
    assert not state.exists()
    assert "nothing to restore" in run_loggend("tune", "restore", *args).stdout


def test_refusal_changes_nothing(tmp_path):
    root = fake_sysctl(tmp_path)
    locked = root / "net" / "ipv4" / "ip_local_port_range"
    locked.unlink()                                               # one sysctl this kernel does not have
    result = run_loggend("tune", "apply", "--sysctl-root", str(root), "--state", str(tmp_path / "s.json"))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "net.ipv4.ip_local_port_range: no such sysctl" in result.stderr
    assert all((root.joinpath(*k.split("."))).read_text() == "1000\n" for k in KEYS[:-1])
    assert not (tmp_path / "s.json").exists()


@pytest.mark.root
def test_not_root_is_a_clear_error_and_nothing_changes(tmp_path):
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root to drop to an unprivileged user (setpriv)")
    scratch = Path(tempfile.mkdtemp(prefix="loggen-tune-"))     # pytest's tmp_path is private to root
    os.chmod(scratch, 0o755)
    root = fake_sysctl(scratch)
    tmp_path = scratch
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m",
                             "loggend", "tune", "apply", "--sysctl-root", str(root), "--state",
                             str(tmp_path / "s.json")], capture_output=True, text=True, env=env, cwd="/",
                            timeout=60)
    assert result.returncode == 1, result.stderr
    assert "needs root" in result.stderr and "nothing was changed" in result.stderr
    assert all((root.joinpath(*k.split("."))).read_text() == "1000\n" for k in KEYS)
    shutil.rmtree(scratch)


@pytest.mark.root
@pytest.mark.alone
def test_real_kernel_round_trip(tmp_path):
    real = Tuner(state=str(tmp_path / "state.json"))
    try:
        real.check_writable(KEYS)
    except TuningError as err:
        pytest.skip(f"the real /proc/sys cannot be tuned here: {err}")
    before = {k: real.read(k) for k in KEYS}
    try:
        real.apply()
        assert {k: real.read(k) for k in KEYS} == TUNING
    finally:
        real.restore()
    assert {k: real.read(k) for k in KEYS} == before


@pytest.mark.slow
@pytest.mark.root
@pytest.mark.alone
def test_run_with_optimize_applies_and_restores(tmp_path, receiver):
    real = Tuner()
    try:
        real.check_writable(KEYS)
    except TuningError as err:
        pytest.skip(f"the real /proc/sys cannot be tuned here: {err}")
    if real.saved() is not None:
        pytest.skip(f"{real.state} exists: somebody's tuning is applied; not touching it")
    before = {k: real.read(k) for k in KEYS}
    try:
        result = run_loggend("run", "--config", "/dev/null", "--workers", "1", "--dashboard", "off", "-optimize=true",
                             "--target", f"127.0.0.1:{receiver.port}", "--rate", "1000", "--duration", "1s")
    finally:
        if real.saved() is not None:      # the run was killed (a timeout) before it restored: not for ever
            real.restore()
    assert result.returncode == 0, result.stderr
    assert "optimize: kernel tuning applied" in result.stderr and "optimize: kernel tuning restored" in result.stderr
    assert {k: real.read(k) for k in KEYS} == before and real.saved() is None
