"""The layers hold: no module of loggend imports one of a higher layer (docs/architecture.md draws them).

Read from the source with ``ast``: every ``import`` counts, at the top of a module or inside a
function, under ``TYPE_CHECKING`` or not. A module or package of loggend that no layer names fails
too, so a new one is placed on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import loggend

PACKAGE = Path(loggend.__file__).parent

# Highest first. A module may import its own unit (package or module) and any unit of a lower layer.
LAYERS: list[tuple[str, set[str]]] = [
    ("entry", {"cli", "__main__"}),
    ("tools", {"tools"}),                              # perftest, find-limit, bench, profile, soak
    ("control", {"control"}),                          # the supervisor and what it runs
    ("web", {"web"}),                                  # the web child: app, metrics, state
    ("report", {"report"}),                            # what adds up and prints: totals, console, charts
    ("config", {"config", "settings", "options", "templates"}),   # the settings read, checked and frozen into specs
    ("content and sink", {"content", "sink"}),         # what is sent; what receives and counts it
    ("base", {"parsers", "files", "fleet", "profiles", "yamlsafe", "detectspec"}),
    ("engine", {"engine"}),                            # the hot path: standard library only
    ("root", {"loggend", "errors"}),                   # the package itself (its version), every exit code
]
# Units of one layer that must not import each other either.
INDEPENDENT: list[set[str]] = [{"content", "sink"}]


def rank(unit: str) -> int:
    """0 for the lowest layer; -1 for a unit no layer names."""
    for i, (_, units) in enumerate(reversed(LAYERS)):
        if unit in units:
            return i
    return -1


def unit_of(module: str) -> str:
    """``loggend.control.supervisor`` -> ``control``; ``loggend.config`` -> ``config``; ``loggend`` -> ``loggend``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(tree: ast.AST, package: str, root: Path) -> list[tuple[int, str]]:
    """(line, module) of every loggend module this tree imports; ``from loggend import x`` counts as
    ``loggend.x`` when x is a module or package, else as ``loggend``."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == package]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                out.append((node.lineno, "<relative>"))
            elif node.module == package:
                for a in node.names:
                    sub = root / a.name
                    out.append((node.lineno, f"{package}.{a.name}" if sub.is_dir() or sub.with_suffix(".py").is_file()
                                else package))
            elif node.module and node.module.split(".")[0] == package:
                out.append((node.lineno, node.module))
    return out


def violations(root: Path) -> list[str]:
    """Every import against the layers in the package at ``root``, one line each."""
    package = root.name
    bad = []
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root)
        here = unit_of(name)
        where = path.relative_to(root.parent)
        if rank(here) < 0:
            bad.append(f"{where}: unit {here!r} is in no layer (add it to LAYERS in tests/unit/test_layers.py)")
            continue
        for line, target in imported(ast.parse(path.read_text(), str(path)), package, root):
            if target == "<relative>":
                bad.append(f"{where}:{line}: a relative import (write loggend.x in full)")
                continue
            there = unit_of(target)
            if there == here:
                continue
            if rank(there) > rank(here):
                bad.append(f"{where}:{line}: imports {target} ({LAYERS[-1 - rank(there)][0]} layer) from the "
                           f"{LAYERS[-1 - rank(here)][0]} layer below it")
            elif rank(there) < 0:
                bad.append(f"{where}:{line}: imports {target}, in no layer")
            elif any({here, there} <= group for group in INDEPENDENT):
                bad.append(f"{where}:{line}: imports {target}: {here} and {there} are independent")
    return bad


def test_no_module_imports_a_higher_layer() -> None:
    assert violations(PACKAGE) == []


def test_every_layer_is_present() -> None:
    """A layer that names units which no longer exist would hold nothing."""
    present = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
               if (p.suffix == ".py" or (p / "__init__.py").is_file())}
    named = set().union(*(units for _, units in LAYERS)) - {"loggend"}
    assert named - present == set()


def write(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "loggend"
    for rel, text in files.items():
        path = pkg / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for d in [pkg, *[p for p in pkg.rglob("*") if p.is_dir()]]:
        (d / "__init__.py").touch()
    return pkg


@pytest.mark.parametrize(("files", "found"), [
    ({"control/supervisor.py": "from loggend.tools.console import summary\n"},
     "loggend/control/supervisor.py:1: imports loggend.tools.console (tools layer) from the control layer"),
    ({"engine/worker.py": "def later():\n    import loggend.web.app\n"},
     "loggend/engine/worker.py:2: imports loggend.web.app (web layer) from the engine layer"),
    ({"report/console.py": "from loggend import control\n", "control/ratecontrol.py": ""},
     "loggend/report/console.py:1: imports loggend.control (control layer) from the report layer"),
    ({"sink/receiver.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from loggend.content import mix\n"},
     "loggend/sink/receiver.py:3: imports loggend.content: sink and content are independent"),
    ({"extra.py": "import os\n"}, "loggend/extra.py: unit 'extra' is in no layer"),
    ({"web/app.py": "from . import state\n"}, "loggend/web/app.py:1: a relative import"),
])
def test_the_check_finds_an_upward_import(tmp_path: Path, files: dict[str, str], found: str) -> None:
    """The checker on a package built for it: each wrong import is named (so the real check can fail)."""
    bad = violations(write(tmp_path, files))
    assert any(line.startswith(found) for line in bad), bad


def test_the_check_passes_downward_imports(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "cli.py": "from loggend.tools import perftest\nfrom loggend.control import supervisor\n",
        "control/supervisor.py": "from loggend.report.console import summary\nfrom loggend.web import child\n",
        "web/state.py": "from loggend.report.sources import Sources\nfrom loggend import __version__\n",
        "report/totals.py": "from loggend.engine import counters\nfrom loggend.sink import accounting\n",
        "engine/worker.py": "from loggend.engine.spec import WorkerSpec\nfrom loggend.errors import EXIT_OK\n",
    })
    assert violations(root) == []
