"""User templates from the config (``templates:`` as a list) or a YAML file (``--templates FILE``).

A template file is a list of templates, or a mapping with a ``templates:`` list::

    - name: login                      # required: the template's name (CEF/LEEF event id, JSON event.code)
      message: "login user={user} src={ipv4:10.20.0.0/16} session={sid=hex:16} sid={sid}"   # required
      weight: 10                       # relative to the others, and to the catalogue's 1,083 in all
      facility: auth                   # a name (kern, user, ... local7) or 0-23; default user
      severity: notice                 # a name (emerg ... debug) or 0-7; default info
      program: myapp                   # the TAG / APP-NAME; default the name
      pid: true                        # TAG[PID] (a PID stable per host) or TAG alone

Errors are one line naming the file, the template, and for a message the line, the column and
the token (``loggend.engine.tokens`` parses the message). The YAML is composed, not just loaded,
so every message keeps its position in the file.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable
from typing import Any

import yaml

from loggend import yamlsafe
from loggend.content import registry
from loggend.content.mix import identity_seed
from loggend.content.model import Identity
from loggend.engine.catalog import FACILITIES, SEVERITIES
from loggend.engine.tokens import TokenError, UserTemplate, parse_message
from loggend.errors import UsageError

MAX_FILE_BYTES = 16 << 20
MAX_TEMPLATES = 10_000
MAX_WEIGHT = 1e9
KEYS = ("name", "message", "weight", "facility", "severity", "program", "pid", "source")
IDENTITY_TOKEN = re.compile(r"(?<!\{)\{identity:([A-Za-z0-9_-]+)\}")
CHOICE_UNSAFE = re.compile(r"[|*{}@]")
PROGRAM = re.compile(r"[A-Za-z0-9_./-]{1,32}")       # RFC 3164 TAG: 32 characters at most
DEFAULT_PROGRAM_CHARS = re.compile(r"[^A-Za-z0-9_./-]")


def load_templates(label: str, value: object, config_path: str = "", seed: int = 1) -> tuple[UserTemplate, ...]:
    """The templates a ``templates`` value names: a YAML file (a path) or a list given inline in
    ``config_path``. ``label`` names where the value came from (a key, a flag, a variable).
    ``seed``: the run's, which fixes the identity of a source a template names."""
    if value in ("", None, []):
        return ()
    if isinstance(value, str):
        path = value
        nodes = _compose(path, label)
        if isinstance(nodes, yaml.MappingNode):
            found = _key(nodes, "templates")
            if found is None:
                raise UsageError(f"{path}: expected a list of templates, or a mapping with a 'templates:' list")
            nodes = found
        return _build(path, nodes, os.path.dirname(os.path.abspath(path)), seed)
    if not isinstance(value, list):
        raise UsageError(f"{label}: expected a list of templates or the path of a YAML file of them")
    node = None
    if config_path and os.path.isfile(config_path):
        try:
            node = _key(_compose(config_path, label), "templates")
        except UsageError:
            node = None
    if node is None:                                  # no positions: build from the plain values
        node = yaml.compose(yaml.safe_dump(value))
    assert node is not None
    return _build(config_path or label, node, os.path.dirname(os.path.abspath(config_path)) if config_path else "",
                  seed)


def _compose(path: str, label: str) -> yaml.Node:
    """A regular file of at most MAX_FILE_BYTES whose aliases expand to a bounded size (``yamlsafe``)."""
    try:
        text = yamlsafe.read_text(path, f"{label}: {path}", MAX_FILE_BYTES)
    except UsageError as err:
        if not os.path.exists(path):
            raise UsageError(f"{label}: {path}: no such file") from None
        if not os.path.isfile(path):
            raise UsageError(f"{label}: {path}: not a regular file") from None
        raise err from None
    node = yamlsafe.compose(text, path)
    if node is None:
        raise UsageError(f"{path}: empty; expected a list of templates")
    return node


def _key(node: yaml.Node, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return v if isinstance(v, yaml.Node) else None
    return None


def _value(node: yaml.Node) -> Any:
    return yaml.SafeLoader("").construct_object(node, deep=True)      # the plain value of a node


def _build(path: str, seq: yaml.Node, base: str, seed: int = 1) -> tuple[UserTemplate, ...]:
    if not isinstance(seq, yaml.SequenceNode) or not seq.value:
        raise UsageError(f"{path}: templates: expected a non-empty list of templates (name, message, ...)")
    if len(seq.value) > MAX_TEMPLATES:
        raise UsageError(f"{path}: templates: more than {MAX_TEMPLATES:,} templates")
    out: list[UserTemplate] = []
    names: set[str] = set()
    for n, node in enumerate(seq.value, 1):
        where = f"{path}: template {n} (line {node.start_mark.line + 1})"
        if not isinstance(node, yaml.MappingNode):
            raise UsageError(f"{where}: expected a mapping with name and message")
        fields = {str(k.value): v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
        unknown = sorted(set(fields) - set(KEYS))
        if unknown:
            raise UsageError(f"{where}: unknown key {unknown[0]!r}; expected {', '.join(KEYS)}")
        for required in ("name", "message"):
            if required not in fields:
                raise UsageError(f"{where}: no {required!r}")
        name = str(_value(fields["name"]) or "").strip()
        if not name or len(name) > 64:
            raise UsageError(f"{where}: name: expected 1 to 64 characters")
        if name in names:
            raise UsageError(f"{where}: name {name!r} is used twice")
        names.add(name)
        where = f"{path}: template {name!r}"
        identity = _identity(where, fields.get("source"), seed)
        out.append(UserTemplate(
            name=name,
            message=_message(where, fields["message"], base, identity),
            weight=_number(where, "weight", fields.get("weight"), 1.0, 0.0, MAX_WEIGHT),
            facility=_code(where, "facility", fields.get("facility"), FACILITIES, 1),
            severity=_code(where, "severity", fields.get("severity"), SEVERITIES, 6),
            program=_program(where, fields.get("program"), name),
            pid=_flag(where, "pid", fields.get("pid"), True),
            hosts=identity.hosts if identity else (),
        ))
    return tuple(out)


def _identity(where: str, node: yaml.Node | None, seed: int) -> Identity | None:
    """The identity of the source a template names (the devices a run of that source speaks for)."""
    if node is None:
        return None
    name = str(_value(node))
    source = registry.get(name)
    if source is None:
        raise UsageError(f"{where}: source: {name!r} is not allowed; expected one of {', '.join(registry.names())}")
    return source.identity(random.Random(identity_seed(seed, name)))


def _with_identity(where: str, text: str, identity: Identity | None, at: Callable[[int], str]) -> str:
    """``{identity:KEY}`` as a choice of the source's values (``host``: the device sending it). Each
    key is drawn on its own, not from the sending device's values (README: A template of a source)."""
    def choice(m: re.Match[str]) -> str:
        if identity is None:
            raise UsageError(f"{where}: {at(m.start() + 1)}: {m[0]}: needs the template to name a source "
                             "(source: NAME)")
        if m[1] == "host":
            return "{host}"                         # the device sending it: the header's host
        values = identity.extra.get(m[1])
        if values is None:
            raise UsageError(f"{where}: {at(m.start() + 1)}: {m[0]}: expected a key of the source's identity: "
                             + ", ".join(("host", *identity.extra)))
        safe = [v for v in values if not CHOICE_UNSAFE.search(v)] or ["-"]
        return "{choice:" + "|".join(safe) + "}"
    return IDENTITY_TOKEN.sub(choice, text)


def _message(where: str, node: yaml.Node, base: str, identity: Identity | None = None) -> tuple[Any, ...]:
    text = _value(node)
    if not isinstance(text, str) or not text.strip():
        raise UsageError(f"{where}: message: expected text with tokens such as {{int:1-100}}")

    def at(column: int) -> str:
        """Where column ``column`` of the message is in the file."""
        line, start = node.start_mark.line + 1, node.start_mark.column + 1
        quoted = getattr(node, "style", None) in ("'", '"')
        return f"line {line}, column {start + int(quoted) + column - 1}" if "\n" not in text \
            else f"line {line} (the message), column {column} of it"

    try:
        return parse_message(_with_identity(where, text, identity, at), base)
    except TokenError as err:
        raise UsageError(f"{where}: {at(err.column)}: {err.token}: {err.why}") from None


def _number(where: str, key: str, node: yaml.Node | None, default: float, lo: float, hi: float) -> float:
    if node is None:
        return default
    value = _value(node)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo < value <= hi:
        raise UsageError(f"{where}: {key}: {value!r} is not allowed; expected a number above {lo:g} "
                         f"and at most {hi:g}")
    return float(value)


def _code(where: str, key: str, node: yaml.Node | None, names: dict[str, int], default: int) -> int:
    if node is None:
        return default
    value = _value(node)
    if isinstance(value, str) and value.lower() in names:
        return names[value.lower()]
    if isinstance(value, int) and not isinstance(value, bool) and value in names.values():
        return value
    raise UsageError(f"{where}: {key}: {value!r} is not allowed; expected one of {', '.join(names)} "
                     f"or 0-{max(names.values())}")


def _program(where: str, node: yaml.Node | None, name: str) -> str:
    if node is None:
        return DEFAULT_PROGRAM_CHARS.sub("-", name)[:32] or "app"
    value = str(_value(node))
    if not PROGRAM.fullmatch(value):
        raise UsageError(f"{where}: program: {value!r} is not allowed; expected 1 to 32 characters "
                         "of letters, digits and _ . / - (an RFC 3164 TAG)")
    return value


def _flag(where: str, key: str, node: yaml.Node | None, default: bool) -> bool:
    if node is None:
        return default
    value = _value(node)
    if not isinstance(value, bool):
        raise UsageError(f"{where}: {key}: {value!r} is not allowed; expected true or false")
    return value
