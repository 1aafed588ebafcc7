"""Every source by name, from each family module's ``SOURCES`` tuple.

A family module (``cisco``, ``paloalto``, ``windows``...) defines one or more ``Source``\\ s and
lists them in ``SOURCES``; ``FAMILIES`` names the modules, in the order ``loggend sources``
lists them. A family whose module is not there is left out (``missing`` says which), so the
registry works while families are written. Names are unique: a second source of one name is a
programming error, raised at import.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from loggend.content.model import Source

# module -> the family's page in docs/sources/
FAMILIES: tuple[tuple[str, str], ...] = (
    ("linux", "linux"), ("cisco", "cisco"), ("paloalto", "paloalto"), ("fortinet", "fortinet"),
    ("checkpoint", "checkpoint"), ("juniper", "juniper"), ("iptables", "iptables"), ("windows", "windows"),
    ("linuxhost", "linuxhost"), ("web", "web"), ("proxies", "proxies"), ("ids", "ids"), ("cloud", "cloud"),
)


def _module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"loggend.content.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"loggend.content.{name}":
            raise
        return None


def _load() -> tuple[dict[str, Source], dict[str, str], tuple[str, ...]]:
    sources: dict[str, Source] = {}
    family: dict[str, str] = {}
    missing = []
    for module_name, page in FAMILIES:
        module = _module(module_name)
        if module is None:
            missing.append(module_name)
            continue
        for source in module.SOURCES:
            if source.name in sources:
                raise ValueError(f"two sources are called {source.name!r}")
            sources[source.name] = source
            family[source.name] = page
    return sources, family, tuple(missing)


SOURCES, FAMILY, MISSING = _load()


def names() -> tuple[str, ...]:
    return tuple(SOURCES)


def get(name: str) -> Source | None:
    return SOURCES.get(name)


def by_family() -> dict[str, list[Source]]:
    """Family page -> its sources, in registry order."""
    out: dict[str, list[Source]] = {}
    for name, source in SOURCES.items():
        out.setdefault(FAMILY[name], []).append(source)
    return out


def proofs() -> tuple[tuple[bytes, bytes, bytes, bytes], ...]:
    """Every form's proof of delivery, as the sink looks for it (``loggend.sink.accounting``)."""
    found: dict[tuple[bytes, bytes, bytes, bytes], None] = {}
    for source in SOURCES.values():
        for form in source.forms:
            if form.proof is not None:
                p = form.proof
                found[(p.stream_before.encode(), p.stream_after.encode(), p.seq_before.encode(),
                       p.seq_after.encode())] = None
    return tuple(found)
