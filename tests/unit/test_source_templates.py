"""Templates that name a source speak for its devices and take values of its identity."""

import random
import re

import pytest

from loggend.config import load
from loggend.content import registry
from loggend.content.drafts import text
from loggend.content.mix import corpus, identity_seed
from loggend.errors import UsageError

TEMPLATE = """\
- name: fgt-admin
  source: fortigate
  message: "admin login on {identity:host} serial={identity:serials} user={user}"
  weight: 10
"""


def config(tmp_path, template: str, *extra: tuple[str, tuple[str, object]]):
    path = tmp_path / "t.yaml"
    path.write_text(template)
    return load("/dev/null", {"templates": ("--templates", str(path)), **dict(extra)}, usable_cpus={0}, env={})


def test_a_template_naming_a_source_speaks_for_its_devices(tmp_path):
    c = config(tmp_path, TEMPLATE, ("sources", ("--sources", "fortigate=90")), ("messages.pool_size",
                                                                                ("--pool-size", "1000")))
    ident = registry.get("fortigate").identity(random.Random(identity_seed(c.messages.seed, "fortigate")))
    mine = [text(c_r) for c_r in corpus(c.messages, 0.0, 1000).window(0, 1000)]
    logins = [m for m in mine if b"admin login on" in m]
    assert len(logins) == 100                                   # 10 of 100 in the mix's units
    for m in logins:
        host, on, serial = re.search(rb"^<\d+>\w{3} [ \d]\d [\d:]{8} (\S+) fgt-admin\[\d+\]: admin login on (\S+) "
                                     rb"serial=(\S+) ", m).groups()
        assert host == on and host.decode() in ident.hosts
        assert serial.decode() in ident.extra["serials"]


@pytest.mark.parametrize("message, says", [
    ("x {identity:nosuch}", "template 'fgt-admin': line 3, column 15: {identity:nosuch}: expected a key of the "
                            "source's identity: host, serials"),
    ("x {identity:serials}", None),
])
def test_identity_tokens_are_checked(tmp_path, message, says):
    tpl = TEMPLATE.replace("admin login on {identity:host} serial={identity:serials} user={user}", message)
    if says is None:
        config(tmp_path, tpl)
        return
    with pytest.raises(UsageError, match=re.escape(says)):
        config(tmp_path, tpl)


def test_identity_tokens_need_a_source_and_the_source_must_exist(tmp_path):
    with pytest.raises(UsageError, match="needs the template to name a source"):
        config(tmp_path, TEMPLATE.replace("  source: fortigate\n", ""))
    with pytest.raises(UsageError, match="source: 'nosuch' is not allowed; expected one of linux"):
        config(tmp_path, TEMPLATE.replace("source: fortigate", "source: nosuch"))
