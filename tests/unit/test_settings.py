"""The settings registry (loggend/settings.py) and everything made from it: the flags, the variables, the
config's defaults, the reload table, config/loggen.yaml, docs/configuration.md, the man page and the
shell completion."""

from __future__ import annotations

import ast
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path

import pytest

from loggend import options, settings
from loggend.cli import build_parser, overrides_from_args
from loggend.config import Config, load
from loggend.tools import reference

ROOT = Path(__file__).resolve().parents[2]
MAX_CLI_LINES = 300
MAX_FUNCTION_LINES = 100


@pytest.mark.parametrize("path,make", [("config/loggen.yaml", reference.config_yaml),
                                       ("docs/configuration.md", reference.configuration_md)])
def test_the_committed_files_are_what_the_registry_makes(path, make):
    assert (ROOT / path).read_text() == make(), f"{path} is made from loggend/settings.py: run `make reference`"


def test_every_key_once_with_its_parts():
    keys = [s.key for s in settings.SETTINGS]
    assert len(keys) == len(set(keys))
    envs = [s.env for s in settings.SETTINGS]
    assert len(envs) == len(set(envs)) and settings.BY_KEY["messages.seed"].env == "LOGGEN_MESSAGES_SEED"
    flags = [f for s in settings.SETTINGS for f in reference.flags_of(s)]
    assert len(flags) == len(set(flags))
    for s in settings.SETTINGS:
        assert s.help and "\n" not in s.help and s.doc, s.key
        assert s.reload and set(s.reload) <= set(settings.RELOAD_CLASSES), s.key
        assert reference.allowed(s), s.key
        if s.parse is not None:
            s.parse(s.key, s.default)               # every default is a value its own parser takes


def test_the_config_defaults_are_the_registrys():
    """One default per key: a Config built from nothing holds what the file's defaults make (the dataclass
    once said 1 worker, port 514 and no memory limit where the CLI and the file said 40, 514-553 and 12G)."""
    loaded = load("/dev/null", env={}, usable_cpus={0})
    bare = Config(host="127.0.0.1")
    resolved = {"host", "worker_processes", "cpus", "sink_processes", "sink_cpus", "source", "tls", "messages",
                "sink_tls_cert", "sink_tls_key", "target_name", "replay_timing", "instance", "instances"}
    for f in fields(Config):
        if f.name not in resolved:
            assert getattr(bare, f.name) == getattr(loaded, f.name), f.name
    assert (bare.workers, bare.ports, bare.memory_limit) == (40, tuple(range(514, 554)), 12 << 30)
    assert (bare.instance, bare.instances) == (loaded.instance, loaded.instances) == (0, 1)


def test_every_field_has_a_reload_class():
    """What a reload does when a field changes comes from the keys that set it; the supervisor reads it."""
    table = settings.RELOAD
    assert {f.name for f in fields(Config)} - set(table) == {"source"}
    assert table["rate"] == table["profile_spec"] == {settings.IN_PLACE}
    assert table["workers"] == table["messages"] == table["target_name"] == {settings.HAND_OVER}
    assert table["host"] == table["ports"] == {settings.SINKS, settings.HAND_OVER}
    assert table["local_sink"] == table["sink_processes"] == {settings.SINKS}
    assert table["dashboard"] == {settings.WEB} and table["quiet"] == {settings.OUTPUT}
    assert table["instance"] == {settings.FIXED} and table["control_socket"] == {settings.NEXT_START}
    assert settings.reload_class("duration") == {settings.IN_PLACE}


def test_every_flag_of_run_sets_its_key():
    for s in settings.SETTINGS:
        for flag, value, expected in ((s.flag, "x", "x"), (s.switch[0] if s.switch else "", None,
                                                             s.switch[1] if s.switch else None)):
            if not flag:
                continue
            argv = ["run", flag] + ([value] if value is not None else [])
            if s.repeat and flag == s.flag:            # a repeatable flag: each adds an item of the key's list
                argv, expected = argv + [flag, "y"], ["x", "y"]
            assert overrides_from_args(build_parser().parse_args(argv))[s.key] == (flag, expected), flag
    legacy = overrides_from_args(build_parser().parse_args(["run", "-target=h", "-duration=2", "-optimize=yes"]))
    assert legacy == {"target": ("-target", "h"), "duration": ("-duration", 120.0), "optimize": ("-optimize", "yes")}


def test_cli_and_config_stay_small():
    assert len((ROOT / "loggend/cli.py").read_text().splitlines()) <= MAX_CLI_LINES
    for path in ("loggend/cli.py", "loggend/config.py", "loggend/settings.py", "loggend/options.py"):
        tree = ast.parse((ROOT / path).read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1          # type: ignore[operator]
                assert length <= MAX_FUNCTION_LINES, f"{path}: {node.name} is {length} lines"


def every_option() -> list[tuple[str, options.Option]]:
    return [(c.name, o) for c in options.COMMANDS for o in options.options(c) if not o.hidden]


def test_the_man_page_has_every_command_option_and_key(tmp_path):
    page = reference.manpage()
    for command in options.COMMANDS:
        assert f'.SS "loggend {command.name}"' in page
    for _, option in every_option():
        assert reference.option_label(option) in page, option.flags
    for s in settings.SETTINGS:
        assert f"\\fB{reference.roff(s.key)}\\fR" in page and s.env.replace("_", "_") in page.replace("\\-", "-")
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed: the page is not rendered")
    path = tmp_path / "loggend.1"
    path.write_text(page)
    result = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and not result.stderr, result.stderr       # no roff warnings
    shown = subprocess.run(["groff", "-man", "-Tutf8", str(path)], capture_output=True, text=True, timeout=60).stdout
    assert "loggend - syslog load generator" in shown.replace("\u2010", "-")


def bash_complete(script: Path, *words: str) -> list[str]:
    """What `loggend WORDS<TAB>` offers in bash, with the generated completion loaded."""
    line = " ".join(f"'{w}'" for w in words)
    program = f". {script}; COMP_WORDS=(loggend {line}); COMP_CWORD={len(words)}; _loggend; " \
              'printf "%s\\n" "${COMPREPLY[@]}"'
    result = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=30, cwd=script.parent)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion(tmp_path):
    script = tmp_path / "loggend.bash"
    script.write_text(reference.bash_completion())
    (tmp_path / "loggen.yaml").write_text("rate: 1k\n")
    assert bash_complete(script, "") == [c.name for c in options.COMMANDS] + ["--help", "--version"]
    run_flags = bash_complete(script, "run", "--")
    assert {o.flags[0] for c, o in every_option() if c == "run"} <= set(run_flags)
    assert "--feedback" not in run_flags and "--feedback" in bash_complete(script, "find-limit", "--")
    assert bash_complete(script, "run", "--protocol", "") == ["udp", "tcp", "tls"]
    assert bash_complete(script, "run", "--config", "loggen.") == ["loggen.yaml"]
    assert bash_complete(script, "ctl", "") == ["status", "rate", "profile", "pause", "resume", "reload", "inject",
                                              "detected"]
    assert bash_complete(script, "run", "--rate", "") == []


def test_zsh_completion_names_every_option():
    script = reference.zsh_completion()
    assert script.startswith("#compdef loggend\n")
    for command, option in every_option():
        if not option.positional:
            assert f"'{option.flags[0]}" in script, (command, option.flags)
    if shutil.which("zsh"):
        result = subprocess.run(["zsh", "-n"], input=script, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
