"""The house's size rules, held for the whole package: no class over 300 lines and no function over
100 (the hot path's send loops may be named in LONG_LOOPS if they ever need to be longer; none do)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "loggend"
MAX_CLASS, MAX_FUNCTION = 300, 100
LONG_LOOPS: set[str] = set()           # "engine/worker.py:send_loop", should one ever have to grow


def test_no_class_over_300_lines_and_no_function_over_100():
    over = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            if isinstance(node, ast.ClassDef) and lines > MAX_CLASS:
                over.append(f"{name}: class {node.name} is {lines} lines")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and lines > MAX_FUNCTION \
                    and f"{name}:{node.name}" not in LONG_LOOPS:
                over.append(f"{name}: {node.name}() is {lines} lines")
    assert not over, "\n".join(over)
