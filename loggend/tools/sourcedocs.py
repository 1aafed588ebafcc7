"""The pages of docs/sources/: one per family, each source with one real sample of each message kind.

``python -m loggend.tools.sourcedocs docs/sources`` (``make docs-sources``) writes them from the
code: the samples are what ``loggend sources show NAME --utc --seed 1`` prints, at a fixed time
(``SAMPLE_TIME``) so the pages do not change from one day to the next; a test holds the pages equal
to what this module writes.
"""

from __future__ import annotations

import calendar
import importlib
import re
import sys
from pathlib import Path

from loggend.content import registry
from loggend.content.model import Kind, Source
from loggend.tools.sources import messages

SAMPLE_TIME = calendar.timegm((2026, 12, 1, 10, 0, 0, 0, 0, 0))
SAMPLE_SEED = 1
SAMPLE_SEARCH = 20_000          # messages searched for a sample of each kind
TITLES = {
    "linux": "Linux (the catalogue)", "cisco": "Cisco", "paloalto": "Palo Alto Networks", "fortinet": "Fortinet",
    "checkpoint": "Check Point", "juniper": "Juniper", "iptables": "Linux netfilter", "windows": "Windows",
    "linuxhost": "Linux hosts: sudo and auditd", "web": "Web servers and Squid", "proxies": "Web proxies",
    "ids": "IDS and network monitors", "cloud": "AWS",
}


def marker(kind: Kind) -> re.Pattern[bytes]:
    return re.compile(kind.marker.encode() if kind.marker else re.escape(kind.name.encode()))


def samples(source: Source, form: str = "") -> dict[str, bytes]:
    """The first message of each kind among the source's first ``SAMPLE_SEARCH`` messages."""
    found: dict[str, bytes] = {}
    kinds = [(k.name, marker(k)) for k in source.kinds]
    for m in messages(source, SAMPLE_SEARCH, form, SAMPLE_SEED, True, SAMPLE_TIME):
        for name, rx in kinds:
            if name not in found and rx.search(m):
                found[name] = m
        if len(found) == len(kinds):
            break
    return found


def section(source: Source) -> list[str]:
    total = sum(k.weight for k in source.kinds) or 1.0
    out = [f"## {source.name}", "",
           f"{source.vendor} {source.product}, {source.version}. Format: {source.reference}.", "",
           f"Tested against: {source.parser}.", "",
           "Forms (`--format`; the first is the default):", ""]
    for f in source.forms:
        proof = (f"proof of delivery: `{f.proof.stream_before}<stream>{f.proof.stream_after}` ... "
                 f"`{f.proof.seq_before}<12 digits>{f.proof.seq_after}`" if f.proof else
                 f"no proof of delivery: {f.no_proof}")
        out.append(f"* `{f.name}`: {f.description}; {proof}")
    out += ["", "Fields a SIEM extracts: " + ", ".join(f"`{x}`" for x in source.fields) + ".", ""]
    found = samples(source)
    for k in source.kinds:
        out += [f"### {source.name}: {k.name} ({100 * k.weight / total:.1f} %)", "", k.description + ".", ""]
        sample = found.get(k.name)
        if sample is None:
            out += [f"(no {k.name} among the first {SAMPLE_SEARCH:,} messages)", ""]
            continue
        out += ["```text", sample.decode("utf-8", "replace"), "```", ""]
    return out


def intro(family: str) -> list[str]:
    """The family module's docstring, as Markdown: what the family's sources are and how they agree."""
    doc = importlib.import_module(f"loggend.content.{family}").__doc__ or ""
    return [doc.strip().replace("``", "`"), ""] if doc.strip() else []


def page(family: str, sources: list[Source]) -> str:
    names = ", ".join(f"`{s.name}`" for s in sources)
    out = [f"# {TITLES.get(family, family)}", "", *intro(family),
           f"Sources: {names}. Samples are real: `loggend sources show NAME --utc` prints them (here at "
           f"{SAMPLE_TIME} = 2026-12-01T10:00:00Z, seed {SAMPLE_SEED}, stream `w0`, numbered from 0 in the "
           f"order generated; a kind's sample is its first message). This page is written by "
           f"`make docs-sources`.", ""]
    for source in sources:
        out += section(source)
    return "\n".join(out).rstrip() + "\n"


def pages() -> dict[str, str]:
    """File name -> text of every family's page."""
    return {f"{family}.md": page(family, sources) for family, sources in registry.by_family().items()}


def write(directory: str) -> None:
    for name, text in pages().items():
        Path(directory, name).write_text(text)


if __name__ == "__main__":
    write(sys.argv[1] if len(sys.argv) > 1 else "docs/sources")
