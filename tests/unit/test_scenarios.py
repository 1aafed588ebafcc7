"""Attack scenarios: their keys and bounds, their messages in the sources' own forms, the background's identities."""

from __future__ import annotations

import ipaddress
import re

import pytest

from loggend.content import registry, scenarios
from loggend.content.mix import identity_seed
from loggend.content.scenarios import Background, instance, message, parse
from loggend.engine.render import Fleet
from loggend.errors import ConfigError
from loggend.sink import accounting

NOW = 1_796_591_045.0
SMALL = {"ssh-bruteforce": "attempts=5,success=true", "password-spray": "accounts=4", "port-scan": "ports=6",
         "priv-escalation": "", "beacon": "count=3", "exfiltration": "connections=2"}
FORMS = [("", ()), ("json", ("windows-security",)), ("cef", ("paloalto", "fortigate"))]


def render(inst: scenarios.Instance) -> list[bytes]:
    return [message(step, NOW, True, "scn", i) for i, step in enumerate(inst.steps)]


@pytest.fixture(autouse=True)
def _proofs() -> None:
    accounting.use_proofs(registry.proofs())


@pytest.mark.parametrize("name", list(SMALL))
def test_every_scenario_sends_its_attacker_and_target_numbered_in_its_own_stream(name: str) -> None:
    inst = instance(parse("--scenario", f"{name}:{SMALL[name]}"), Background(), 1)
    assert inst.id == f"{name}-1"
    assert ipaddress.IPv4Address(inst.source) in ipaddress.IPv4Network(scenarios.ATTACKER_NET)
    sent = render(inst)
    assert sent and all(b"\n" not in m for m in sent)
    carries = [inst.source.encode() in m for m in sent]      # a group change names no address: only its logon
    assert all(carries) if name != "priv-escalation" else carries == [False, True, False], sent
    assert any(inst.target.encode() in m for m in sent), sent
    offsets = [s.offset for s in inst.steps]
    assert offsets == sorted(offsets) and offsets[0] == 0.0
    for i, m in enumerate(sent):
        assert accounting.parse(m) == (b"scn", i), m


def test_counts_and_spans_follow_the_keys() -> None:
    bg = Background()
    ssh = instance(parse("s", "ssh-bruteforce:attempts=7,within=30"), bg, 1)
    assert len(ssh.steps) == 7 and ssh.steps[-1].offset <= 30 and ssh.steps[-1].offset > 20
    assert all(b"Failed password for " in m for m in render(ssh))
    won = render(instance(parse("s", "ssh-bruteforce:attempts=3,success=true,user=root"), bg, 1))
    assert [b"Accepted password for root " in m for m in won] == [False, False, False, True]
    scan = render(instance(parse("s", "port-scan:ports=50"), bg, 1))
    ports = {int(re.search(rb"DPT=(\d+)", m)[1]) for m in scan}      # type: ignore[index]
    assert len(ports) == 50
    spray = render(instance(parse("s", "password-spray:accounts=12"), bg, 1))
    users = {re.search(rb"\tCORP\\([^\t]+)\t", m)[1] for m in spray}      # type: ignore[index]
    assert len(users) == 12 and all(b"\t4625\t" in m for m in spray)
    beacon = instance(parse("s", "beacon:count=5,period=60,jitter=10"), bg, 1)
    gaps = [b.offset - a.offset for a, b in zip(beacon.steps, beacon.steps[1:], strict=False)]
    assert len(gaps) == 4 and all(54 <= g <= 66 for g in gaps)
    exfil = render(instance(parse("s", "exfiltration:bytes=3000000000,connections=3"), bg, 1))
    sent = [int(re.search(rb"sentbyte=(\d+)", m)[1]) for m in exfil]     # type: ignore[index]
    assert sum(sent) == 3_000_000_000


def test_instances_repeat_every_and_stop_at_the_end() -> None:
    req = parse("s", "beacon:at=10,every=100,count=1")
    got = list(scenarios.instances(req, Background(), 350))
    assert [(i.id, i.start) for i in got] == [("beacon-1", 10), ("beacon-2", 110), ("beacon-3", 210), ("beacon-4", 310)]
    assert len(list(scenarios.instances(parse("s", "beacon:at=10"), Background(), 10_000))) == 1
    assert list(scenarios.instances(parse("s", "beacon:at=500"), Background(), 100)) == []


def test_the_same_devices_as_the_background() -> None:
    bg = Background(seed=7, hosts=300)
    ssh = instance(parse("s", "ssh-bruteforce"), bg, 1)
    assert ssh.target in Fleet.build(300, 7).names
    windows = registry.get("windows-security")
    assert windows is not None
    ident = windows.identity(__import__("random").Random(identity_seed(7, "windows-security")))
    spray = render(instance(parse("s", "password-spray"), bg, 1))
    assert all(re.match(rb"<\d+>\w{3} [ \d]\d [\d:]{8} (\S+) ", m)[1].decode() in ident.hosts   # type: ignore[index]
               for m in spray)
    promoted = render(instance(parse("s", "priv-escalation:group=Administrators"), bg, 1))
    assert [re.search(rb"\t(\d{4})\t", m)[1] for m in promoted] == [b"4732", b"4624", b"4672"]  # type: ignore[index]
    assert ident.extra["domain_sid"][0].encode() in promoted[0]
    asa = registry.get("cisco-asa")
    assert asa is not None
    scan = render(instance(parse("s", "port-scan"), Background(seed=7, mix=("cisco-asa", "linux")), 1))
    pool = asa.identity(__import__("random").Random(identity_seed(7, "cisco-asa"))).extra["nat_pool"]
    assert all(b"%ASA-4-106023: Deny tcp src outside:" in m for m in scan)
    assert all(f"dst dmz:{pool[0]}/".encode() in m for m in scan)


@pytest.mark.parametrize("form,sources", FORMS)
def test_the_runs_form_is_the_scenarios_form(form: str, sources: tuple[str, ...]) -> None:
    mix = ("paloalto", "windows-security")
    for name in ("port-scan", "password-spray", "exfiltration"):
        inst = instance(parse("s", name), Background(mix=mix, form=form), 1)
        for step in inst.steps:
            assert step.form == (form if step.source in sources else "native")


@pytest.mark.parametrize("text,complaint", [
    ("nmap", "a scenario: ssh-bruteforce"),
    ("ssh-bruteforce:attempts=0", "ssh-bruteforce:attempts: '0' is not allowed; expected a number from 1 to 10000"),
    ("ssh-bruteforce:attempts=lots", "a number from 1 to 10000"),
    ("ssh-bruteforce:tries=3", "'tries' is not allowed; expected one of its keys: at, every, source"),
    ("ssh-bruteforce:attempts", "KEY=VALUE"),
    ("ssh-bruteforce:source=example.com", "an IPv4 address"),
    ("port-scan:firewall=pfsense", "one of iptables, cisco-asa, paloalto, fortigate"),
    ("beacon:every=0.5", "0 (once) or at least 1 second"),
    ("beacon:jitter=101", "a number from 0 to 100 %"),
    ("beacon:count=3,count=4", "each key once"),
    ("exfiltration:firewall=iptables", "one of cisco-asa, paloalto, fortigate"),
    ("priv-escalation:target_host=a b", "a name of letters"),
    ("port-scan:target_host=fw-edge-01", "port-scan:target_host: 'fw-edge-01' is not allowed; expected an IPv4"),
    ("", "NAME[:KEY=VALUE,...]"),
])
def test_bad_requests_are_one_line_naming_the_key(text: str, complaint: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse("--scenario", text)
    assert complaint in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith("--scenario")


def test_the_listing_names_every_scenario_its_keys_and_a_sample() -> None:
    from loggend.tools.scenarios import listing
    text = listing(Background(), NOW)
    for scenario in scenarios.SCENARIOS.values():
        entry = text.split(f"{scenario.name}: ", 1)[1].split("\n\n", 1)[0]
        for key in scenario.all_keys():
            assert f"\n    {key.name} " in entry, (scenario.name, key.name)
        sample = entry.split("  sample   ", 1)[1]
        first = instance(parse("s", scenario.name), Background(), 1).steps[0]
        sent = message(first, NOW, False, "scn", 0).decode().replace("\t", " ")
        assert sample.removesuffix("...") == sent[:len(sample.removesuffix("..."))], sample


def test_the_command_lists_shows_and_refuses_in_one_line() -> None:
    import subprocess
    import sys
    run = [sys.executable, "-m", "loggend", "scenarios"]
    listed = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and listed.stdout.count("\n  sample   <") == len(scenarios.SCENARIOS)
    shown = subprocess.run([*run, "show", "ssh-bruteforce:attempts=3,source=203.0.113.9", "--seed", "4"],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and shown.stdout.count("from 203.0.113.9 port") == 3, shown.stdout
    for bad in (["show", "ssh-bruteforce:attempts=0"], ["show"], ["--sources", "nosuch=1"]):
        refused = subprocess.run([*run, *bad], capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr, bad


def test_the_scenarios_page_is_what_the_code_writes() -> None:
    from pathlib import Path

    from loggend.tools.scenarios import page
    docs = Path(__file__).resolve().parents[2] / "docs" / "scenarios.md"
    assert docs.read_text() == page(), "docs/scenarios.md is stale: run make docs-scenarios"


def test_the_scenario_keys_come_from_the_file_the_environment_and_the_flags(tmp_path) -> None:
    """scenarios, truth, detect... are keys of the registry: a config file, LOGGEN_* and the (repeatable)
    flags set them, file < environment < flags, each checked with its bounds in one line."""
    import subprocess
    import sys

    from loggend.config import load
    path = tmp_path / "loggen.yaml"
    path.write_text("scenarios:\n  - ssh-bruteforce:attempts=5\n  - port-scan:ports=9\ndetect: [webhook]\n"
                    "detect_timeout: 30s\ntruth: t.jsonl\n")
    c = load(str(path), env={})
    assert [r.name for r in c.scenarios] == ["ssh-bruteforce", "port-scan"] and c.scenarios[0].get("attempts") == 5
    assert [d.kind for d in c.detect] == ["webhook"] and c.detect_timeout == 30.0
    assert c.truth.endswith("/t.jsonl") and c.truth.startswith("/")       # a daemon runs from /
    env = load(str(path), env={"LOGGEN_SCENARIOS": "beacon:count=2;exfiltration"})
    assert [r.name for r in env.scenarios] == ["beacon", "exfiltration"]
    flags = load(str(path), {"scenarios": ("--scenario", ["priv-escalation"])}, env={"LOGGEN_SCENARIOS": "beacon"})
    assert [r.name for r in flags.scenarios] == ["priv-escalation"]
    assert not load("", env={}).scenarios and load("", env={}).detect_timeout == 120.0
    run = [sys.executable, "-m", "loggend", "run", "--config", "/dev/null", "--dashboard", "off", "--duration", "1s"]
    for bad, says in ((["--detect-timeout", "0.5s"], "--detect-timeout: '0.5s' is not allowed; expected a duration "
                       "from 1s to 24h"),
                      (["--truth", str(tmp_path / "t")], "--truth: only with scenarios (--scenario) or inject"),
                      (["--scenario", "beacon", "--detect", "prometheus:http://127.0.0.1:9"],
                       "--detect-query: '' is not allowed; expected a PromQL query"),
                      (["--scenario", "beacon", "--detect-query", "up"], "--detect-query: only with detect"),
                      (["--scenario", "beacon", "--scenario", "nosuch"], "--scenario: 'nosuch' is not allowed"),
                      (["--scenario", "beacon", "--protocol", "tls"],                    # it sent none, said in the log
                       "--scenario: not with protocol tls: the scenarios' injector sends over udp or tcp"),
                      (["--scenario", "beacon", "--truth", str(tmp_path / "none" / "t.jsonl")],    # was a traceback
                       f"--truth: cannot write {tmp_path / 'none' / 't.jsonl'}: No such file or directory")):
        refused = subprocess.run([*run, *bad], capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1, (bad, refused.stderr)
        assert says in refused.stderr, (bad, refused.stderr)


def test_a_reload_keeps_the_running_scenarios_and_says_so() -> None:
    from loggend.config import load
    from loggend.control.sinks import LocalSinkTls
    from loggend.control.supervisor import read_reload
    said: list[str] = []
    running = load("", {"scenarios": ("--scenario", ["beacon"])}, env={})
    read = read_reload(lambda: load("", {"scenarios": ("--scenario", ["port-scan"]), "rate": ("--rate", "5")},
                                    env={}), running, LocalSinkTls(), lambda line, *level: said.append(line))
    assert read is not None
    _, new, changes = read
    assert [r.name for r in new.scenarios] == ["beacon"] and changes == {"rate"}
    assert "reload: scenarios apply at the next start; the run goes on with its own" in said
