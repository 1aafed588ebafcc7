"""A template's ``@FILE`` is read by the config files' rules: a regular file of at most 1 MiB of
UTF-8, relative to the template file; anything else is one line and exit 2, the same from
check-config as from run (a FIFO used to hang the start, /dev/zero to fill the memory)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import pytest

from loggend.engine.userfile import MAX_USER_FILE_BYTES
from tests.support.processes import ROOT, child_environ

MEMORY_CAP = 2 << 30          # the old code read /dev/zero until the box ran out: fail instead
TIMEOUT = 30.0                # ... and waited on a FIFO for ever


def bounded(*args: str, cwd) -> subprocess.CompletedProcess[str]:
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    try:
        return subprocess.run([sys.executable, "-m", "loggend", *args], capture_output=True, text=True,
                              timeout=TIMEOUT, env=child_environ({"PYTHONPATH": str(ROOT)}), cwd=cwd,
                              preexec_fn=cap, start_new_session=True)
    except subprocess.TimeoutExpired:
        pytest.fail(f"loggend {' '.join(args)} still running after {TIMEOUT:g} s")


def template_with(tmp_path, source: str) -> str:
    (tmp_path / "templates.yaml").write_text(f'- name: t\n  message: "pick {{choice:@{source}}}"\n')
    config = tmp_path / "loggen.yaml"
    config.write_text("templates: templates.yaml\n")
    return str(config)


def both(tmp_path, source: str, cwd, port: int) -> tuple[str, str]:
    """The error line of check-config and of run for a template choosing from ``source``."""
    config = template_with(tmp_path, source)
    check = bounded("check-config", config, cwd=cwd)
    run = bounded("run", "--config", config, "--target", f"127.0.0.1:{port}", "--duration", "1s", "--dashboard", "off",
                  cwd=cwd)
    for result in (check, run):
        assert result.returncode == 2, result.stderr[-2000:]
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    return check.stderr.strip(), run.stderr.strip()


@pytest.mark.parametrize("source,why", [
    ("/dev/zero", "/dev/zero: is a character device; expected a regular file"),
    ("fifo", "fifo: is a FIFO; expected a regular file"),
    ("big.txt", f"big.txt: larger than {MAX_USER_FILE_BYTES >> 10:,} KiB"),
    ("latin1.txt", "latin1.txt: not UTF-8 text (byte 3)"),
    ("folder", "folder: is a directory; expected a regular file"),
    ("nul.txt", "nul.txt: line 1 holds a control character (\\x00)"),
    ("esc.txt", "esc.txt: line 2 holds a control character (\\x1b)"),
    ("cr.txt", "cr.txt: line 1 holds a control character (\\r)"),
])
def test_a_file_that_is_not_a_small_regular_text_file_is_one_line_and_exit_2(receiver, tmp_path, source, why):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "big.txt").write_text(("x" * 99 + "\n") * (MAX_USER_FILE_BYTES // 100 + 1))
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    (tmp_path / "folder").mkdir()
    (tmp_path / "nul.txt").write_bytes(b"a\x00b\n")           # these went into the datagrams as they were
    (tmp_path / "esc.txt").write_bytes(b"ok\nc\x1bd\n")
    (tmp_path / "cr.txt").write_bytes(b"c\re\n")            # a lone CR split one line into two values
    check, run = both(tmp_path, source, ROOT, receiver.port)
    assert why in check and "templates.yaml: template 't'" in check and f"{{choice:@{source}}}" in check
    assert check == run and receiver.datagrams == []


def test_a_relative_file_is_read_beside_the_template_file_and_its_lines_are_the_choices(tmp_path):
    (tmp_path / "words.txt").write_text("alpha\r\nbeta\n\n  \ngamma\n")
    config = template_with(tmp_path, "words.txt")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = bounded("check-config", config, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    from loggend.templates import load_templates
    (template,) = load_templates("templates", str(tmp_path / "templates.yaml"))
    assert template.message[1].args[0] == ("alpha", "beta", "gamma")
