import re

from loggend.engine import catalog
from loggend.engine.render import _fields

TAG_RE = re.compile(r"[A-Za-z0-9_./-]{1,32}")
REQUIRED_SOURCES = {"sshd", "sudo", "cron", "kernel", "systemd", "postfix", "nginx-access", "nginx-error",
                    "firewall", "dhclient", "named", "auditd"}


def test_catalog_is_large_and_covers_common_sources():
    assert len(catalog.TEMPLATES) >= 30
    assert len(catalog.sources()) >= 10
    assert REQUIRED_SOURCES <= catalog.sources()


def test_every_placeholder_has_a_generator_and_every_tag_is_valid():
    for t in catalog.TEMPLATES:
        assert TAG_RE.fullmatch(t.tag), t.tag
        assert 0 <= t.facility <= 23 and 0 <= t.severity <= 7
        assert set(t.roles) <= set(catalog.ALL_ROLES)
        for name in _fields(t.text):
            assert name in catalog.FIELDS, (t.source, name)


def test_a_few_sources_dominate():
    by_source: dict[str, float] = {}
    for t in catalog.TEMPLATES:
        by_source[t.source] = by_source.get(t.source, 0) + t.weight
    total = sum(by_source.values())
    top3 = sorted(by_source.values(), reverse=True)[:3]
    assert sum(top3) / total > 0.6
