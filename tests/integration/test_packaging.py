"""The systemd unit and `make install` / `make uninstall`, into a scratch root."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from loggend.tools.reference import bash_completion, manpage, zsh_completion
from tests.support.processes import ROOT

UNIT = ROOT / "systemd" / "loggen.service"
TEMPLATE = ROOT / "systemd" / "loggen@.service"
MAX_EXPOSURE = 2.0          # systemd-analyze security: 0 = locked down, 10 = exposed; < 2 is "OK"
analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                             reason="systemd-analyze is not installed (scripts/system-deps.sh installs it as root)")


def unit_with_our_loggend(tmp_path, unit: Path = UNIT, name: str = "loggen.service") -> str:
    """The unit with ExecStart pointing at this checkout's loggend (verify checks that it exists)."""
    loggend = shutil.which("loggend", path=str(ROOT / ".venv" / "bin")) or f"{sys.executable} -m loggend"
    path = tmp_path / name
    path.write_text(unit.read_text().replace("/usr/local/bin/loggend", loggend.split()[0]))
    return str(path)


def test_the_template_is_the_unit_with_one_config_per_instance():
    service = UNIT.read_text().split("[Service]", 1)[1]
    assert TEMPLATE.read_text().split("[Service]", 1)[1] == service.replace("/etc/loggen.yaml", "/etc/loggen/%i.yaml")
    assert "ExecStart=/usr/local/bin/loggend run --config /etc/loggen/%i.yaml" in TEMPLATE.read_text()
    for unit in (UNIT, TEMPLATE):          # loggen's own documentation, where make install puts it
        assert ("Documentation=file:///usr/local/share/doc/loggen/README.md "
                "file:///usr/local/share/doc/loggen/loggen.yaml\n") in unit.read_text()


@analyze
def test_the_template_verifies(tmp_path):
    instance = unit_with_our_loggend(tmp_path, TEMPLATE, "loggen@a.service")
    result = subprocess.run(["systemd-analyze", "verify", instance], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


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


@pytest.fixture
def scratch_root():
    """A scratch install root the unprivileged check can reach (pytest's tmp_path is under a 0700 dir)."""
    path = Path(tempfile.mkdtemp(prefix="loggen-install-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def install_dirs(root: Path) -> dict[str, Path]:
    return {"PREFIX": root / "usr/local", "SYSCONFDIR": root / "etc", "UNITDIR": root / "units",
            "LIBDIR": root / "opt/loggen", "DOCDIR": root / "doc"}


@pytest.mark.slow
def test_make_install_and_uninstall(scratch_root):
    dirs = install_dirs(scratch_root)
    args = [f"{k}={v}" for k, v in dirs.items()]
    install = subprocess.run(["make", "-s", "install", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr
    loggend = dirs["PREFIX"] / "bin/loggend"
    assert re.search(r"^installed loggend \S+ from /usr/bin/python3: edit ", install.stdout, re.M), install.stdout
    # built from the system's interpreter, which the unit's user can run (and, as root, was run as nobody)
    assert os.path.realpath(dirs["LIBDIR"] / "bin/python3").startswith("/usr/bin/python3")
    check = subprocess.run([str(loggend), "check-config", str(dirs["SYSCONFDIR"] / "loggen.yaml")],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and "ok: 40 workers" in check.stdout, check.stderr
    unit = (dirs["UNITDIR"] / "loggen.service").read_text()
    assert f"ExecStart={loggend} run --config {dirs['SYSCONFDIR']}/loggen.yaml" in unit
    assert f"Documentation=file://{dirs['DOCDIR']}/README.md file://{dirs['DOCDIR']}/loggen.yaml" in unit
    template = (dirs["UNITDIR"] / "loggen@.service").read_text()
    assert f"ExecStart={loggend} run --config {dirs['SYSCONFDIR']}/loggen/%i.yaml" in template
    assert (dirs["DOCDIR"] / "README.md").exists() and (dirs["DOCDIR"] / "loggen.yaml").exists()
    assert (dirs["DOCDIR"] / "index.md").exists() and (dirs["DOCDIR"] / "troubleshooting.md").exists()   # the manual
    assert "the manual in the docs/ folder" in (dirs["PREFIX"] / "share/man/man1/loggend.1").read_text()
    # the man page and completion, made by the installed loggend, equal to what this checkout makes
    generated = {"man/man1/loggend.1": manpage(), "bash-completion/completions/loggend": bash_completion(),
                 "zsh/site-functions/_loggend": zsh_completion()}
    for path, text in generated.items():
        assert (dirs["PREFIX"] / "share" / path).read_text() == text, path
    # an edited config survives a second install and the uninstall
    (dirs["SYSCONFDIR"] / "loggen.yaml").write_text("rate: 1000\n")
    again = subprocess.run(["make", "-s", "install", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "keeping the existing" in again.stdout
    remove = subprocess.run(["make", "-s", "uninstall", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert remove.returncode == 0, remove.stderr
    assert not loggend.exists() and not dirs["LIBDIR"].exists() and not (dirs["UNITDIR"] / "loggen.service").exists()
    assert not (dirs["UNITDIR"] / "loggen@.service").exists() and not dirs["DOCDIR"].exists()
    assert (dirs["SYSCONFDIR"] / "loggen.yaml").read_text() == "rate: 1000\n"
    assert not [path for path in generated if (dirs["PREFIX"] / "share" / path).exists()]


def hidden_interpreter(tmp_path: Path) -> Path:
    """A link to the system's python3 inside a directory only root may enter (as /root is)."""
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    link = closed / "python3"
    link.symlink_to("/usr/bin/python3")
    return link


HOME_PYTHON = os.path.realpath(sys.executable)      # here: pyenv's, under /root, as in the issue


@pytest.mark.parametrize("python,why", [
    ("/nonexistent/python3", "/nonexistent/python3: no such interpreter"),
    (HOME_PYTHON, "which the service cannot see (ProtectHome=yes hides /root, /home and /run/user)"),
    ("closed", "cannot be run by an unprivileged user (uid 65534)"),
])
def test_make_install_refuses_an_interpreter_the_service_cannot_run(scratch_root, tmp_path, python, why):
    if python == HOME_PYTHON and not python.startswith(("/root/", "/home/")):
        pytest.skip(f"the test's own interpreter {python} is not under /root or /home")
    if python == "closed":
        if os.geteuid() != 0:
            pytest.skip("trying an interpreter as another user needs root")
        python = str(hidden_interpreter(tmp_path))
    dirs = install_dirs(scratch_root)
    result = subprocess.run(["make", "-s", "install", f"INSTALL_PYTHON={python}",
                             *[f"{k}={v}" for k, v in dirs.items()]],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if not re.match(r"make(\[\d+\])?: ", line)]
    assert len(ours) == 1 and ours[0].startswith(f"make install: {python}") and why in ours[0], result.stderr
    assert not dirs["LIBDIR"].exists()                    # refused before anything was built
