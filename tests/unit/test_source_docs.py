"""docs/sources: every family has its page, and the pages' samples are what the code generates."""

from pathlib import Path

from loggend.content import registry
from loggend.tools.sourcedocs import pages

DOCS = Path(__file__).resolve().parents[2] / "docs" / "sources"


def test_every_family_page_is_what_the_code_writes():
    written = pages()
    assert set(written) == {f"{family}.md" for family in registry.by_family()}
    for name, text in written.items():
        assert (DOCS / name).read_text() == text, f"docs/sources/{name} is stale: run make docs-sources"


def test_every_kind_of_every_source_has_a_sample():
    for name, text in pages().items():
        assert "(no " not in text, name
    readme = (DOCS / "README.md").read_text()
    for family in registry.by_family():
        assert f"]({family}.md)" in readme, family
