"""The documentation's rules: a short README, no link that leaves the repository, every page of
docs/ in the manual's nav, and every error line the code can print listed in troubleshooting.

`make docs` (mkdocs --strict, in CI) checks the links and anchors inside the manual; these tests
hold what mkdocs cannot see, and run without it."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README_LINES = 250
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")      # [text](target), ![alt](target)
AUTOLINK = re.compile(r"<((?:https?|ftp)://[^>\s]+)>")
LOOPBACK = {"127.0.0.1", "localhost", "[::1]"}
ERRORS = {"UsageError", "ConfigError"}     # bad input: one line, exit 2 (loggend/errors.py)
FRAGMENT = 12                              # the shortest piece of an error's fixed text that is looked for


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted(DOCS.rglob("*.md"))]


def without_code(text: str) -> str:
    """The text outside fenced code blocks (sample output is not a link)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def links(path: Path) -> list[str]:
    text = without_code(path.read_text())
    return LINK.findall(text) + AUTOLINK.findall(text)


def test_the_readme_is_short():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_LINES, f"README.md has {len(lines)} lines; the manual in docs/ takes the rest"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_link_leaves_the_repository(path):
    assert path.exists(), path
    assert "../shared" not in path.read_text(), f"{path.name} points outside the repository (../shared)"
    for target in links(path):
        url = urlparse(target)
        if url.scheme in ("http", "https", "ftp"):
            assert url.hostname in LOOPBACK or f"[{url.hostname}]" in LOOPBACK, (path.name, target)
            continue
        assert not url.scheme and not url.netloc, (path.name, target)
        if not url.path:                   # an anchor on the same page (mkdocs checks it)
            continue
        assert not url.path.startswith("/"), f"{path.name}: {target}: an absolute path"
        resolved = (path.parent / unquote(url.path)).resolve()
        assert resolved.is_relative_to(ROOT), f"{path.name}: {target} leaves the repository"
        assert resolved.exists(), f"{path.name}: {target} does not exist"


def nav_pages(nav: object) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in nav_pages(value)]
    return []


def test_every_page_is_in_the_nav():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert config["docs_dir"] == "docs"
    pages = nav_pages(config["nav"])
    on_disk = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(set(pages)) == on_disk, "docs/ and the nav of mkdocs.yml differ"
    assert len(pages) == len(set(pages)), "a page is in the nav twice"
    for page in ("configuration.md", "architecture.md", "troubleshooting.md", "benchmarks.md", "sources/README.md"):
        assert page in pages, page


def literal_pieces(node: ast.AST):
    """The fixed text of a message: string constants, and the constant parts of f-strings."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.JoinedStr):
        piece = ""
        for value in node.values:
            if isinstance(value, ast.Constant):
                piece += value.value
            else:
                yield piece
                piece = ""
        yield piece
    elif isinstance(node, ast.BinOp):
        yield from literal_pieces(node.left)
        yield from literal_pieces(node.right)
    elif isinstance(node, ast.IfExp):
        yield from literal_pieces(node.body)
        yield from literal_pieces(node.orelse)


def error_lines() -> list[tuple[str, str]]:
    """(where, the longest fixed piece of its text) for every bad-input error the code raises."""
    found = []
    for path in sorted((ROOT / "loggend").rglob("*.py")):
        source = path.read_text()
        if not any(name + "(" in source for name in ERRORS):
            continue
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name not in ERRORS:
                continue
            pieces = [p.strip(" ;:,.()'\"") for arg in node.args for p in literal_pieces(arg)]
            pieces = [p for p in pieces if len(p) >= FRAGMENT]
            if pieces:
                found.append((f"{path.relative_to(ROOT)}:{node.lineno}", max(pieces, key=len)))
    return found


def squeeze(text: str) -> str:
    return " ".join(text.replace("\\|", "|").split())


def test_every_error_line_is_in_troubleshooting():
    page = squeeze((DOCS / "troubleshooting.md").read_text())
    lines = error_lines()
    assert len(lines) > 100, "the error lines were not found in the code"
    missing = [f"{where}: {text!r}" for where, text in lines if squeeze(text) not in page]
    assert not missing, "docs/troubleshooting.md does not say what these mean:\n" + "\n".join(missing)
