"""Files made from the settings registry (``loggend.settings``) and the commands (``loggend.options``):
``config/loggen.yaml``, ``docs/configuration.md``, the man page ``loggend(1)`` and bash and zsh completion.

``python -m loggend.tools.reference KIND PATH`` writes one (KIND: yaml, docs, man, bash, zsh); the
first two are committed and tests hold them equal to what this makes (``make reference`` rewrites
them); ``make man completion`` writes the others into build/, and ``make install`` installs them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator

from loggend import __version__, errors, options, settings
from loggend.settings import Setting

YAML_HEADER = """\
# loggen: the supervisor's configuration (/etc/loggen.yaml).
#
# Every key is optional; the values below are the defaults. An environment variable LOGGEN_<KEY>
# (the key in capitals, "." as "_": LOGGEN_RATE, LOGGEN_MESSAGES_SEED) overrides the file, and
# the flags of `loggend run` override both (--rate, --seed). Check a file with
# `loggend check-config PATH`; apply an edited /etc/loggen.yaml to a running daemon with
# `systemctl reload loggen` (SIGHUP). An invalid file is refused with one line naming the key and
# the running config stays in force.
"""
EXIT_CODES = (
    ("EXIT_OK", "success"),
    ("EXIT_FAILURE", "the run failed: a child could not start, a target failed, the memory limit; find-limit: no "
     "limit found"),
    ("EXIT_USAGE", "bad flags, config, template or request: one line naming the key or flag, no traceback"),
    ("EXIT_BOOT_FAILED", "a child could not start at all (a worker cannot send, a sink cannot bind)"),
    ("EXIT_REPORT_FAILED", "a report or summary could not be written (what it says was printed all the same)"),
    ("EXIT_INTERRUPTED", "stopped by Ctrl-C before it finished"),
)


# --- config/loggen.yaml ---------------------------------------------------------------------------------

def yaml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == "":
        return '""'
    if value == []:
        return "[]"
    return str(value)


def config_yaml() -> str:
    """``config/loggen.yaml``: every key with its doc as a comment and its default as the value."""
    out = [YAML_HEADER]
    section = ""
    for s in settings.SETTINGS:
        indent = "  " if s.section else ""
        if s.section != section:
            section = s.section
            if section:
                out += ["", f"# {settings.SECTION_DOCS[section]}", f"{section}:"]
        if not s.section:
            out.append("")
        out += [f"{indent}# {line}".rstrip() for line in s.doc.splitlines()]
        out.append(f"{indent}{s.name}: {yaml_value(s.default)}")
    return "\n".join(out) + "\n"


# --- docs/configuration.md ------------------------------------------------------------------------------

def markdown_text(doc: str) -> Iterator[str]:
    """A key's doc as Markdown: its lines as paragraphs, its indented lines (examples) as a code block."""
    paragraph: list[str] = []
    code: list[str] = []
    for line in [*doc.splitlines(), ""]:
        if line.startswith("  "):
            code.append(line[2:])
            continue
        if code:
            if paragraph:
                yield " ".join(paragraph)
                paragraph = []
            yield "```yaml\n" + "\n".join(code) + "\n```"
            code = []
        if line:
            paragraph.append(line.replace("<", "&lt;"))
    if paragraph:
        yield " ".join(paragraph)


def flags_of(s: Setting) -> list[str]:
    return [f for f in (s.flag, s.switch[0] if s.switch else "", s.legacy) if f]


def configuration_md() -> str:
    """``docs/configuration.md``: the reference of every key."""
    out = ["# Configuration", "",
           "`loggend run` reads `/etc/loggen.yaml` (or `--config PATH`). Every key is optional; each has an "
           "environment variable `LOGGEN_<KEY>` (the key in capitals, `.` as `_`) that overrides the file, and "
           "most have a flag of `loggend run` that overrides both: file < environment < flags. A `LOGGEN_*` "
           "variable that names no key is refused. `loggend check-config PATH` checks a file (and the "
           "variables); `systemctl reload loggen` (SIGHUP) applies an edited file to a running daemon, and an "
           "invalid one is refused with one line naming the key while the running config stays in force.", "",
           "The shipped `config/loggen.yaml` has every key with its default and this text as comments. This page, "
           "that file, the flags, the man page `loggend(1)` and the shell completion are all made from one list, "
           "`loggend/settings.py`.", "",
           "| Key | Flag | Variable | Default | On reload |", "| --- | --- | --- | --- | --- |"]
    for s in settings.SETTINGS:
        flags = ", ".join(f"`{f}`" for f in flags_of(s)) or "-"
        out.append(f"| [`{s.key}`](#{anchor(s.key)}) | {flags} | `{s.env}` | `{yaml_value(s.default)}` | "
                   f"{reload_text(s)} |")
    for s in settings.SETTINGS:
        out += ["", f"## {s.key}", ""]
        out.append(f"Default `{yaml_value(s.default)}`; variable `{s.env}`" +
                   (f"; flag {', '.join(f'`{f}`' for f in flags_of(s))}" if flags_of(s) else "") +
                   f". Values: {allowed(s).replace('<', '&lt;')}. On reload: {reload_text(s)}.")
        for block in markdown_text(s.doc):
            out += ["", block]
    return "\n".join(out).rstrip() + "\n"


def anchor(key: str) -> str:
    """The id mkdocs gives the heading ``## key``."""
    return re.sub(r"[^a-z0-9_\- ]", "", key.lower()).replace(" ", "-")


def reload_text(s: Setting) -> str:
    return ", ".join(s.reload)


def allowed(s: Setting) -> str:
    """What a key takes: its own words, or what its parser says when it refuses a value."""
    if s.allowed:
        return s.allowed
    if s.choices:
        return ", ".join(s.choices)
    assert s.parse is not None, s.key
    try:
        s.parse(s.key, "\x00?")
    except errors.ConfigError as err:
        return str(err).split("; expected ", 1)[1]
    raise AssertionError(f"{s.key}: its parser takes anything; give it allowed=")


# --- the man page ---------------------------------------------------------------------------------------

def roff(text: str) -> str:
    text = text.replace("\\", "\\e").replace("-", "\\-").replace("%(default)s", "{default}").replace("%%", "%")
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line for line in text.splitlines())


def option_help(option: options.Option) -> str:
    return option.help.replace("%(default)s", str(option.default)).replace("%%", "%")


def option_label(option: options.Option) -> str:
    if option.positional:
        return f"\\fI{option.flags[0]}\\fR"
    flag = f"\\fB{roff(option.flags[0])}\\fR"
    return flag if option.switch else f"{flag} \\fI{option.flags[0].lstrip('-').replace('-', '_').upper()}\\fR"


def manpage() -> str:
    """``loggend(1)`` in roff (man macros)."""
    out = [f'.TH LOGGEND 1 "" "loggend {__version__}" "User Commands"', ".SH NAME",
           "loggend \\- syslog load generator for SIEM ingestion tests", ".SH SYNOPSIS"]
    for command in options.COMMANDS:
        out += [f".B loggend {command.name}", "[\\fIOPTIONS\\fR]", ".br"]
    out += [".SH DESCRIPTION", roff(
        "loggend pushes realistic syslog to a target at millions of events per second from one box, holds the "
        "rate it was asked for, and proves what arrived: its own sink counts every stream's sequence numbers. "
        "loggend run is the supervisor (the systemd unit loggen.service runs it); the other commands steer, "
        "check or measure it."), ".SH COMMANDS"]
    for command in options.COMMANDS:
        out += [f'.SS "loggend {command.name}"', roff(command.help[0].upper() + command.help[1:] + ".")]
        if command.description:
            out += [".PP", roff(command.description)]
        for option in options.options(command):
            if option.hidden:
                continue
            out += [".TP", option_label(option), roff(option_help(option) + (
                f" (config key {option.key}, {settings.env_name(option.key)})" if option.key else ""))]
    out += [".SH CONFIGURATION", roff(
        "The keys of /etc/loggen.yaml, with their defaults. Each has an environment variable LOGGEN_<KEY> (the "
        "key in capitals, . as _) that overrides the file; a flag of loggend run overrides both."), ]
    for s in settings.SETTINGS:
        out += [".TP", f"\\fB{roff(s.key)}\\fR: {roff(yaml_value(s.default))}",
                roff(" ".join(line.strip() for line in s.doc.splitlines())),
                ".br", roff(f"Values: {allowed(s)}. Variable {s.env}" +
                            (f"; flag {', '.join(flags_of(s))}" if flags_of(s) else "") +
                            f". On reload: {reload_text(s)}.")]
    out += [".SH ENVIRONMENT", ".TP", "\\fBLOGGEN_\\fIKEY\\fR", roff(
        "Every config key, e.g. LOGGEN_RATE, LOGGEN_MESSAGES_SEED: read as the file's value would be (lists "
        "comma-separated). A LOGGEN_ variable that names no key is refused."),
        ".SH FILES", ".TP", "\\fI/etc/loggen.yaml\\fR", roff("The configuration loggend run reads by default."),
        ".TP", "\\fI/run/loggen/\\fR", roff("The control sockets of runs under systemd (loggend ctl)."),
        ".SH EXIT STATUS"]
    for name, what in EXIT_CODES:
        out += [".TP", f"\\fB{getattr(errors, name)}\\fR", roff(what)]
    out += [".SH SEE ALSO", "\\fBsystemctl\\fR(1), \\fBjournalctl\\fR(1); the manual in the docs/ folder of "
            "loggen's source, installed in /usr/local/share/doc/loggen."]
    return "\n".join(out) + "\n"


# --- shell completion -----------------------------------------------------------------------------------

def value_options(command: options.Command) -> list[options.Option]:
    return [o for o in options.options(command) if not o.positional and not o.switch and not o.hidden]


def words(items: list[str] | tuple[str, ...]) -> str:
    return " ".join(items)


def bash_completion() -> str:
    """``complete -F _loggend loggend``: commands, each command's flags, the values flags choose from, files."""
    out = ["# bash completion for loggend: made from loggend/settings.py and loggend/options.py", "",
           "_loggend() {", '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" cmd="" i',
           "    for ((i = 1; i < COMP_CWORD; i++)); do",
           '        case "${COMP_WORDS[i]}" in -*) ;; *) cmd="${COMP_WORDS[i]}"; break ;; esac', "    done",
           '    if [[ -z "$cmd" ]]; then',
           f'        COMPREPLY=($(compgen -W "{words([c.name for c in options.COMMANDS])} --help --version" '
           '-- "$cur"))', "        return", "    fi", '    case "$cmd" in']
    for command in options.COMMANDS:
        opts = [o for o in options.options(command) if not o.hidden]
        flags = [f for o in opts if not o.positional for f in o.flags] + ["--help"]
        out += [f"    {command.name})", '        case "$prev" in']
        for o in value_options(command):
            if o.choices:
                action = f'COMPREPLY=($(compgen -W "{words(o.choices)}" -- "$cur"))'
            elif o.complete == "file":
                action = 'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur"))'
            elif o.complete == "dir":
                action = 'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur"))'
            else:
                action = "COMPREPLY=()"
            out.append(f"            {o.flags[0]}) {action}; return ;;")
        out.append("        esac")
        positional = next((o for o in opts if o.positional), None)
        if positional is not None and (positional.choices or positional.complete or positional.flags[0] == "what"):
            values = positional.choices or (("show",) if positional.flags[0] == "what" else ())
            action = f'COMPREPLY=($(compgen -W "{words(values)}" -- "$cur"))' if values else \
                'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur"))'
            out.append(f'        if [[ "$cur" != -* ]]; then {action}; return; fi')
        out += [f'        COMPREPLY=($(compgen -W "{words(flags)}" -- "$cur"))', "        ;;"]
    out += ["    esac", "}", "complete -F _loggend loggend"]
    return "\n".join(out) + "\n"


def zsh_quote(text: str) -> str:
    """Text inside a single-quoted _arguments spec's [description]."""
    text = text.replace("%(default)s", "{default}").replace("%%", "%")
    return re.sub(r"([\[\]:\\])", r"\\\1", text).replace("'", "'\\''")


def zsh_spec(o: options.Option) -> str:
    help_text = zsh_quote(option_help(o))
    if o.positional:
        index = "*" if o.nargs == "*" else "1" if o.flags[0] in ("action", "what", "path") else "2"
        optional = ":" if o.nargs in ("?", "*") else ""
        name = o.flags[0]
        action = f"({words(o.choices)})" if o.choices else "_files" if o.complete == "file" else \
            "(show)" if name == "what" else " "
        return f"'{index}:{optional}{name}:{action}'"
    if o.switch:
        return f"'{o.flags[0]}[{help_text}]'"
    name = o.flags[0].lstrip("-").replace("-", "_")
    action = f"({words(o.choices)})" if o.choices else "_files" if o.complete == "file" else \
        "_files -/" if o.complete == "dir" else " "
    return f"'{o.flags[0]}=[{help_text}]:{name}:{action}'"


def zsh_completion() -> str:
    """``#compdef loggend``: the same as the bash completion, with each flag's help shown beside it."""
    out = ["#compdef loggend", "# zsh completion for loggend: made from loggend/settings.py and loggend/options.py",
           "", "_loggend() {", "    local curcontext=\"$curcontext\" state line", "    typeset -A opt_args",
           "    _arguments -C '(- *)--version[show the version]' '(- *)--help[show the help]' \\",
           "        '1:command:->command' '*::argument:->argument'", "    case $state in", "    command)",
           "        local -a commands", "        commands=("]
    for command in options.COMMANDS:
        out.append(f"            '{command.name}:{zsh_quote(command.help)}'")
    out += ["        )", "        _describe -t commands 'loggend command' commands", "        ;;", "    argument)",
            "        case $line[1] in"]
    for command in options.COMMANDS:
        specs = [zsh_spec(o) for o in options.options(command) if not o.hidden]
        out.append(f"        {command.name})")
        out.append("            _arguments -S \\\n                " + " \\\n                ".join(specs) + " ;;")
    out += ["        esac", "        ;;", "    esac", "}", "", '_loggend "$@"']
    return "\n".join(out) + "\n"


MAKERS: dict[str, Callable[[], str]] = {"yaml": config_yaml, "docs": configuration_md, "man": manpage,
                                        "bash": bash_completion, "zsh": zsh_completion}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in MAKERS:
        print(f"usage: python -m loggend.tools.reference {{{','.join(MAKERS)}}} PATH", file=sys.stderr)
        return errors.EXIT_USAGE
    with open(argv[1], "w") as f:
        f.write(MAKERS[argv[0]]())
    return errors.EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
