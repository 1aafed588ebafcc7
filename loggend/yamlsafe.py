"""YAML files someone else wrote, read without letting them take the machine.

* ``read_text``: by the rules of ``loggend.engine.userfile`` (regular files only, non-blocking,
  up to a size cap), UTF-8.
* ``compose``: the node graph (an alias is a second reference to the same node, so composing is
  cheap), then the size the document would have once every alias is expanded is counted, with
  each node's size counted once: a "billion laughs" of nested aliases is refused in one line
  before anything is built from it (or printed: the repr of such a value is gigabytes).
* ``load``: the plain values of a composed document.

Errors are ``UsageError``: one line naming the file.
"""

from __future__ import annotations

from typing import Any

import yaml

from loggend.engine.userfile import MAX_USER_FILE_BYTES, read_user_file
from loggend.errors import UsageError

MAX_CONFIG_BYTES = MAX_USER_FILE_BYTES  # a config file; loggen.yaml with every comment is about 20 KiB
MAX_EXPANDED_NODES = 1_000_000     # nodes of a document once its aliases are expanded


def read_text(path: str, label: str, limit: int = MAX_CONFIG_BYTES) -> str:
    """The UTF-8 text of the regular file ``path``, at most ``limit`` bytes; ``label`` starts errors."""
    try:
        data = read_user_file(path, limit)
    except ValueError as err:
        more = "; expected a config file" if str(err).startswith("larger") else ""
        raise UsageError(f"{label}: {err}{more}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(f"{label}: not UTF-8 text (byte {err.start:,})") from None


def expanded_size(node: yaml.Node, limit: int = MAX_EXPANDED_NODES) -> int:
    """How many nodes ``node`` stands for with every alias expanded; stops counting past ``limit``
    (and says ``limit + 1``). A node reached again is added again, but its own count is computed once."""
    sizes: dict[int, int] = {}
    pending: list[tuple[yaml.Node, bool]] = [(node, False)]
    open_nodes: set[int] = set()
    while pending:
        current, children_done = pending.pop()
        key = id(current)
        if key in sizes:
            continue
        if isinstance(current, yaml.ScalarNode):
            sizes[key] = 1
            continue
        items: list[yaml.Node] = (current.value if isinstance(current, yaml.SequenceNode)
                                  else [n for pair in current.value for n in pair])
        if children_done:
            open_nodes.discard(key)
            sizes[key] = min(limit + 1, 1 + sum(sizes.get(id(n), limit + 1) for n in items))
            continue
        if key in open_nodes:                     # a node inside itself: infinite once expanded
            return limit + 1
        open_nodes.add(key)
        pending.append((current, True))
        pending.extend((n, False) for n in items if id(n) not in sizes)
    return sizes[id(node)]


def compose(text: str, label: str, limit: int = MAX_EXPANDED_NODES) -> yaml.Node | None:
    """The document's node graph, refused when its aliases expand to more than ``limit`` nodes."""
    try:
        loader = yaml.SafeLoader(text)          # reads the stream at once: a NUL or BEL byte is refused here
    except yaml.YAMLError as err:
        raise UsageError(f"{label}: malformed YAML: {str(err).splitlines()[0]}") from None
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise UsageError(f"{label}: {where}malformed YAML: {err.problem or err.context}") from None
    except yaml.YAMLError as err:
        raise UsageError(f"{label}: malformed YAML: {str(err).splitlines()[0]}") from None
    except RecursionError:
        raise UsageError(f"{label}: nested too deeply") from None
    finally:
        loader.dispose()
    if node is not None and expanded_size(node, limit) > limit:
        raise UsageError(f"{label}: its aliases expand to more than {limit:,} values (an alias bomb?); "
                         "write the values out, or fewer of them")
    if node is not None and (twice := duplicate_key(node)):
        raise UsageError(f"{label}: {twice}")
    return node


def duplicate_key(node: yaml.Node) -> str:
    """Where a mapping names a key twice (YAML loaders keep the last one, silently), or ''."""
    seen: set[int] = set()
    pending = [node]
    while pending:
        current = pending.pop()
        if id(current) in seen or isinstance(current, yaml.ScalarNode):
            continue
        seen.add(id(current))
        if isinstance(current, yaml.SequenceNode):
            pending.extend(current.value)
            continue
        first: dict[tuple[str, str], yaml.Node] = {}
        for key, value in current.value:
            pending.extend((key, value))
            if not isinstance(key, yaml.ScalarNode) or key.value == "<<":
                continue
            earlier = first.setdefault((key.tag, key.value), key)
            if earlier is not key:
                return (f"line {key.start_mark.line + 1}, column {key.start_mark.column + 1}: {key.value!r} is "
                        f"given twice (first on line {earlier.start_mark.line + 1}); YAML would keep only the last")
    return ""


def load(text: str, label: str, limit: int = MAX_EXPANDED_NODES) -> Any:
    """The plain values of the document in ``text`` (None when it is empty)."""
    node = compose(text, label, limit)
    if node is None:
        return None
    try:
        return yaml.SafeLoader("").construct_document(node)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise UsageError(f"{label}: {where}{err.problem or err.context}") from None
    except yaml.YAMLError as err:
        raise UsageError(f"{label}: {str(err).splitlines()[0]}") from None
    except (ValueError, OverflowError) as err:     # a number of more than 4,300 digits, a date out of range
        where = _culprit(node)
        raise UsageError(f"{label}: {where}a value out of any range: {str(err).split(';')[0]}") from None


def _culprit(node: yaml.Node) -> str:
    """``line L, column C: `` of the longest scalar (the one a constructor could not take), or ""."""
    longest: yaml.Node | None = None
    seen: set[int] = set()
    pending = [node]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, yaml.ScalarNode):
            if longest is None or len(current.value) > len(longest.value):
                longest = current
        elif isinstance(current, yaml.SequenceNode):
            pending.extend(current.value)
        else:
            pending.extend(n for pair in current.value for n in pair)
    if longest is None or longest.start_mark is None:
        return ""
    return f"line {longest.start_mark.line + 1}, column {longest.start_mark.column + 1}: "
