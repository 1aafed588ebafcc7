"""The systemd unit and `make install` / `make uninstall`, into a scratch root."""

import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

UNIT = ROOT / "systemd" / "loggen.service"
MAX_EXPOSURE = 2.0          # systemd-analyze security: 0 = locked down, 10 = exposed; < 2 is "OK"
analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                             reason="systemd-analyze is not installed (scripts/system-deps.sh installs it as root)")


def unit_with_our_loggend(tmp_path) -> str:
    """The unit with ExecStart pointing at this checkout's loggend (verify checks that it exists)."""
    loggend = shutil.which("loggend", path=str(ROOT / ".venv" / "bin")) or f"{sys.executable} -m loggend"
    path = tmp_path / "loggen.service"
    path.write_text(UNIT.read_text().replace("/usr/local/bin/loggend", loggend.split()[0]))
    return str(path)


def test_unit_is_a_notify_service_that_reloads_with_sighup():
    text = UNIT.read_text()
    for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure", "WatchdogSec=",
                 "LimitNOFILE=", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                 "RestrictAddressFamilies=", "CapabilityBoundingSet=\n", "RestartPreventExitStatus=2",
                 "ExecStart=/usr/local/bin/loggend run --config /etc/loggen.yaml"):
        assert line in text, line


@analyze
def test_unit_verifies(tmp_path):
    result = subprocess.run(["systemd-analyze", "verify", unit_with_our_loggend(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


@analyze
def test_unit_security_exposure_is_low(tmp_path):
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", unit_with_our_loggend(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for loggen.service: ([\d.]+)", result.stdout)
    assert m, result.stdout + result.stderr
    assert float(m.group(1)) <= MAX_EXPOSURE, result.stdout


@pytest.mark.slow
def test_make_install_and_uninstall(tmp_path):
    dirs = {"PREFIX": tmp_path / "usr/local", "SYSCONFDIR": tmp_path / "etc", "UNITDIR": tmp_path / "units",
            "LIBDIR": tmp_path / "opt/loggen"}
    args = [f"{k}={v}" for k, v in dirs.items()]
    install = subprocess.run(["make", "-s", "install", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr
    loggend = dirs["PREFIX"] / "bin/loggend"
    check = subprocess.run([str(loggend), "check-config", str(dirs["SYSCONFDIR"] / "loggen.yaml")],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and "ok: 40 workers" in check.stdout, check.stderr
    unit = (dirs["UNITDIR"] / "loggen.service").read_text()
    assert f"ExecStart={loggend} run --config {dirs['SYSCONFDIR']}/loggen.yaml" in unit
    # an edited config survives a second install and the uninstall
    (dirs["SYSCONFDIR"] / "loggen.yaml").write_text("rate: 1000\n")
    again = subprocess.run(["make", "-s", "install", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "keeping the existing" in again.stdout
    remove = subprocess.run(["make", "-s", "uninstall", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert remove.returncode == 0, remove.stderr
    assert not loggend.exists() and not dirs["LIBDIR"].exists() and not (dirs["UNITDIR"] / "loggen.service").exists()
    assert (dirs["SYSCONFDIR"] / "loggen.yaml").read_text() == "rate: 1000\n"
