"""Sources as a run sends them: a weighted mix's shares on the wire, an estate's shares and rate, the
sink's exact loss for every source and form, and `loggend sources` as a command."""

import json
import re
import socket

import pytest

from loggend.content import registry
from loggend.content.mix import DEVICES
from loggend.tools.sources import messages
from tests.support.console import summary_counts
from tests.support.processes import RUN, run_loggend, start_sink

DROPPED = (10, 11, 12, 13, 14, 100, 250)     # numbers never sent
LATE = (12,)                                 # ... of which these arrive at the end after all
SENT = 300
# What tells the test's three sources apart on the wire (their native forms)
SIGNATURES = {"fortigate": re.compile(rb"^<\d+>date=\d{4}-"), "juniper-srx": re.compile(rb"^<\d+>1 \S+ \S+ RT_FLOW "),
              "linux": re.compile(rb"^<\d+>[A-Z][a-z]{2} [ \d]\d ")}
MIX = {"linux": 50, "fortigate": 30, "juniper-srx": 20}


def forms_with_proof():
    return [(s.name, f.name) for s in registry.SOURCES.values() for f in s.forms if f.proof is not None]


@pytest.mark.slow
def test_the_sink_counts_forced_gaps_exactly_for_every_source_and_form(loggend):
    """Every form with a proof of delivery, each its own stream, known numbers left out: the sink
    finds every stream and counts exactly what is missing, late and received."""
    proc, port = start_sink(loggend, 0, "--idle-exit", "3s")
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    pairs = forms_with_proof()
    assert len(pairs) >= 5
    sent = 0
    for n, (name, form) in enumerate(pairs):
        batch = list(messages(registry.SOURCES[name], SENT, form, seed=n, stream=f"s{n}"))
        assert len(batch) == SENT, name
        for seq, message in enumerate(batch):
            if seq not in DROPPED:
                out.sendto(message, ("127.0.0.1", port))
                sent += 1
        for seq in LATE:
            out.sendto(batch[seq], ("127.0.0.1", port))
            sent += 1
    assert proc.wait(30) == 0, proc.stderr
    counts = summary_counts(proc.stdout)
    per = len(DROPPED) - len(LATE)
    assert counts == {"datagrams": sent, "streams": len(pairs), "lost": per * len(pairs),
                      "gaps": len(DROPPED) * len(pairs), "reordered": len(LATE) * len(pairs), "duplicates": 0,
                      "without sequence": 0, "kernel drops": 0}


def source_of(message: bytes) -> str:
    found = [name for name, sig in SIGNATURES.items() if sig.search(message)]
    assert len(found) == 1, message[:120]
    return found[0]


@pytest.mark.slow
def test_a_weighted_mix_arrives_within_one_point_of_its_shares(receiver):
    total = 10_000
    mix = ",".join(f"{k}={v}" for k, v in MIX.items())
    result = run_loggend(*RUN, "--target", f"127.0.0.1:{receiver.port}", "--sources", mix, "--rate", "20000",
                         "--duration", "0.5s", "--pool-size", "10000")
    assert result.returncode == 0, result.stderr
    got = receiver.wait_for(total)
    assert len(got) == total
    seen = {name: 0 for name in MIX}
    for m in got:
        seen[source_of(m)] += 1
    weights = sum(MIX.values())
    for name, weight in MIX.items():
        assert abs(100 * seen[name] / total - 100 * weight / weights) <= 1.0, (name, seen)


@pytest.mark.slow
def test_an_estate_gives_the_documented_shares_and_rate(tmp_path, receiver):
    """{fortigate: 2, juniper-srx: 1, linux: 300}: shares by each device's events/s (the table of
    docs/sources/README.md), and that sum as the rate when none is given."""
    estate = {"fortigate": 2, "juniper-srx": 1, "linux": 300}
    documented = documented_eps()
    eps = {name: n * documented[name] for name, n in estate.items()}
    rate = sum(eps.values())
    config = tmp_path / "estate.yaml"
    config.write_text("estate:\n" + "".join(f"  {k}: {v}\n" for k, v in estate.items()))
    args = [a for a in RUN if a != "/dev/null" and a != "--config"]
    result = run_loggend(*args, "--config", str(config), "--target", f"127.0.0.1:{receiver.port}",
                         "--duration", "4s", "--pool-size", "10000", "--summary-json", str(tmp_path / "s.json"))
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["rate"] == rate
    got = receiver.wait_for(summary["sent"])
    seen = {name: 0 for name in estate}
    for m in got:
        seen[source_of(m)] += 1
    for name in estate:
        assert abs(100 * seen[name] / len(got) - 100 * eps[name] / rate) <= 1.0, (name, seen, eps)


def documented_eps() -> dict[str, float]:
    """The estate table of docs/sources/README.md: | kind | source | events/s | basis |."""
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "docs/sources/README.md").read_text()
    rows = re.findall(r"^\| `([\w-]+)` \| `([\w-]+)` \| ([\d.]+) \|", text, re.M)
    return {kind: float(eps) for kind, _, eps in rows}


def test_the_documented_estate_table_is_the_code_s():
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "docs/sources/README.md").read_text()
    rows = re.findall(r"^\| `([\w-]+)` \| `([\w-]+)` \| ([\d.]+) \|", text, re.M)
    assert {k: (s, float(e)) for k, s, e in rows} == {k: (d.source, d.eps) for k, d in DEVICES.items()}


def test_sources_lists_every_source_and_show_prints_them_as_sent():
    listed = run_loggend("sources")
    assert listed.returncode == 0, listed.stderr
    for name in registry.names():
        assert re.search(rf"^{re.escape(name)}: ", listed.stdout, re.M), name
    # a form without proof of delivery says why (the sink's summary is not the only place to learn it)
    assert "  why      native has no proof of delivery: ASA text is free-form" in listed.stdout
    assert "605005 <1%" in listed.stdout and " 0%" not in listed.stdout     # a kind that is sent never reads 0 %
    shown = run_loggend("sources", "show", "fortigate", "--count", "3", "--seed", "7")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.encode().splitlines()
    fortigate = registry.SOURCES["fortigate"]
    expected = list(messages(fortigate, 3, seed=7))
    # the same bytes but for the second the stamps were rendered in
    strip = re.compile(rb"(?:date=[\d-]+|time=[\d:]+|eventtime=\d+)")
    assert [strip.sub(b"", m) for m in lines] == [strip.sub(b"", m) for m in expected]
    assert lines[2].endswith(b"loggen_stream=w0 loggen_seq=000000000002")


@pytest.mark.parametrize("args, says", [
    (("--sources", "nosuch=3"), "--sources: 'nosuch' is not allowed; expected source names: "),
    (("--sources", "cisco-asa=50,paloalto"), "expected a weight for every source once one has one (paloalto has "
                                             "none: paloalto=WEIGHT)"),
    (("--pool-size", "5000"), "expected a power of ten: 1000, 10000, 100000, 1000000"),
    (("--sources", "linux=0"), "--sources: 'linux=0' is not allowed; expected NAME=WEIGHT with a weight above 0"),
    (("--sources", "preset:nosuch"), "expected presets: preset:enterprise"),
    (("--sources", "juniper-srx", "--format", "cef"), "juniper-srx (native) has no cef form"),
    (("--estate", "toaster=3"), "--estate: 'toaster' is not allowed; expected device kinds: "),
    (("--estate", "linux=3", "--sources", "linux"), "give one of them"),
    (("--sources", "linux", "--catalogue", "off"), "a mix of sources replaces the catalogue"),
    (("--sources", "linux", "--replay", "examples/nginx-access.log"),
     "--replay: cannot be given with --sources: a replay sends the file's lines, a mix generates its sources' "
     "messages: one or the other"),
    (("--sources", ""), "--sources: '' is not allowed; expected NAME[=WEIGHT]"),
    (("--estate", ""), "--estate: '' is not allowed; expected a mapping of device kinds"),
    (("--sources", "cisco-asa=1,paloalto=1,cisco-asa=2"), "expected each name once (cisco-asa is given twice)"),
    (("--estate", "windows-dc=1,windows-dc=2"), "expected each name once (windows-dc is given twice)"),
    (("--sources", "cisco-asa=0.001,paloalto=100"), "--sources: 'cisco-asa=0.001' is not allowed; expected a weight "
                                                    "of at least 0.01% of the total"),
    (("--sources", "cisco-asa=1e-300,paloalto=1"), "--sources: 'cisco-asa=1e-300' is not allowed"),
    (("--sources", "cisco-asa=1_000"), "--sources: 'cisco-asa=1_000' is not allowed; expected NAME=WEIGHT with a "
                                       "weight above 0 and up to 1e+09, in decimal digits"),
    (("--sources", "cisco-asa=\u0661\u0662"), "--sources: 'cisco-asa=\u0661\u0662' is not allowed"),
    (("--estate", "cisco-asa=1.5"), "--estate: 'cisco-asa=1.5' is not allowed; expected NAME=COUNT with a whole "
                                    "number of devices"),
    (("--replay-wrap", "rfc5424", "--sources", "cisco-asa"), "--replay-wrap: 'rfc5424' is not allowed; expected "
                                                              "auto without a replay file"),
])
def test_bad_mixes_are_one_line_and_exit_2(args, says):
    result = run_loggend(*RUN, "--target", "127.0.0.1:9", "--duration", "1s", *args)
    assert result.returncode == 2
    assert says in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("text, says", [
    ("replay_wrap: bogus", "replay_wrap: 'bogus' is not allowed; expected one of auto"),
    ("sources: {}", "sources: {} is not allowed"),
    ('sources: ""', "sources: '' is not allowed"),
    ("sources: []", "sources: [] is not allowed"),
    ("estate: {}", "estate: {} is not allowed"),
    ("sources: [cisco-asa, cisco-asa]", "each name once (cisco-asa is given twice)"),
    ("estate: {cisco-asa: 1.5}", "estate: 'cisco-asa=1.5' is not allowed; expected NAME=COUNT"),
])
def test_bad_mixes_in_the_file_are_refused_by_run_and_check_config_alike(tmp_path, text, says):
    path = tmp_path / "loggen.yaml"
    path.write_text(text + "\n")
    for command in (("run", "--config", str(path), "--target", "127.0.0.1:9", "--duration", "1s", "--dashboard",
                     "off", "--control-socket", "off"), ("check-config", str(path))):
        result = run_loggend(*command)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert f"{path}: " in result.stderr and says in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_sources_show_of_an_unknown_form_says_which_forms_there_are():
    result = run_loggend("sources", "show", "juniper-srx", "--format", "cef")
    assert result.returncode == 2
    assert "a form of juniper-srx: native (juniper-srx has no other form)" in result.stderr


def test_sources_show_in_the_default_format_prints_the_vendor_s_own_form_as_a_run_sends_it():
    own = run_loggend("sources", "show", "fortigate", "--count", "3", "--seed", "4", "--utc")
    as_run = run_loggend("sources", "show", "fortigate", "--count", "3", "--seed", "4", "--utc", "--format", "rfc3164")
    assert own.returncode == as_run.returncode == 0, as_run.stderr
    digits = re.compile(r"\d")                   # the stamps: the two ran a second apart, maybe
    assert own.stdout.startswith("<189>date=") and digits.sub("0", as_run.stdout) == digits.sub("0", own.stdout)


def test_show_options_given_to_the_list_are_refused_not_ignored():
    result = run_loggend("sources", "--format", "bogus", "--count", "-5")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == ("loggend: error: sources --count --format: for `loggend sources show NAME` only "
                                     "(the list has none)")


@pytest.mark.slow
def test_a_mix_with_a_source_without_proof_names_it_and_keeps_its_messages_apart(tmp_path):
    """cisco-asa has no room for a stream and number: the run's loss is unknown and says why,
    and none of its messages is taken for a sequenced one (frames never mix the two)."""
    from tests.support.receivers import free_port
    port = free_port()
    result = run_loggend(*RUN, "--target", f"127.0.0.1:{port}", "--sources", "cisco-asa,linux", "--rate", "20000",
                         "--duration", "0.5s", "--pool-size", "10000", "--local-sink", "--summary-json",
                         str(tmp_path / "s.json"))
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["loss_verdict"] == "unknown" and summary["lost"] is None
    assert any(why.startswith("sources whose messages carry no sequence number: cisco-asa (")
               for why in summary["loss_unknown_because"])
    assert summary["sink"]["unsequenced"] == summary["sent"] // 2        # exactly the ASA's half
    # the long why is said once, on the loss line; the lost line points to it
    assert "lost        unknown (the loss line says why); by sequence" in result.stdout, result.stdout
    assert result.stdout.count("carry no sequence number: cisco-asa (") == 1, result.stdout


def out_of_order(messages: list[bytes], opens: bytes, closes: bytes, key: re.Pattern,
                 every_close_opens: bool = True) -> tuple[int, int]:
    """(closings seen, messages out of order): an opening after a closing of its key, or (when every
    closing has an opening, as an ASA Teardown has its Built) a closing before any opening of its key."""
    opened: set[bytes] = set()
    closed: set[bytes] = set()
    seen = wrong = 0
    for m in messages:
        keys = set(key.findall(m))
        if opens in m:
            wrong += bool(keys & closed)
            opened |= keys
        elif closes in m:
            seen += 1
            wrong += every_close_opens and not keys & opened
            closed |= keys
    return seen, wrong


CONVERSATIONS = {   # source: (what opens a conversation, what closes it, the key they share)
    "cisco-asa": (b": Built ", b": Teardown ", re.compile(rb" connection (\d+) ")),
    "juniper-srx": (b" RT_FLOW_SESSION_CREATE ", b" RT_FLOW_SESSION_CLOSE ", re.compile(rb'session-id-32="(\d+)"')),
    "windows-security": (b"\t4624\t", b"\t4634\t", re.compile(rb"Logon ID:\s+(0x[0-9a-f]+)\s")),
    "suricata": (b'"event_type":"alert"', b'"event_type":"flow"', re.compile(rb'"flow_id":(\d+),'), False),
}


@pytest.mark.slow
def test_conversations_arrive_in_order(receiver):
    """One pass of a pool on the wire, in arrival order: every ASA Teardown after its Built, every
    SRX close after its create, every 4634 after the 4624 of its logon id, every Suricata flow
    record after the alerts of its flow id (frames of equal length are shuffled: the pool keeps
    conversations in order by epochs)."""
    total = 10_000
    result = run_loggend(*RUN, "--target", f"127.0.0.1:{receiver.port}", "--sources", ",".join(CONVERSATIONS),
                         "--rate", "20000", "--duration", "0.5s", "--pool-size", "10000")
    assert result.returncode == 0, result.stderr
    got = receiver.wait_for(total)
    assert len(got) == total
    for name in CONVERSATIONS:
        seen, wrong = out_of_order(got, *CONVERSATIONS[name])
        assert seen > 50 and wrong == 0, (name, seen, wrong)


def test_the_shipped_config_with_sources_sends_each_source_in_its_own_form_whole():
    """config/loggen.yaml writes every key with its default (format: rfc3164, max_length: auto):
    with --sources that is each vendor's own form, up to 8,192 bytes."""
    from pathlib import Path

    from loggend.config import load
    shipped = str(Path(__file__).resolve().parents[2] / "config" / "loggen.yaml")
    c = load(shipped, {"sources": ("--sources", "juniper-srx,fortigate")}, usable_cpus={0}, env={})
    assert (c.messages.form, c.messages.max_length) == ("", 8192)
    assert load(shipped, {}, usable_cpus={0}, env={}).messages.max_length == 1024
    cef = load(shipped, {"sources": ("--sources", "fortigate"), "format": ("--format", "cef")}, usable_cpus={0}, env={})
    assert cef.messages.form == "cef"


@pytest.mark.slow
def test_a_standalone_sink_calls_the_loss_beside_unsequenced_messages_unknown(loggend):
    """cisco-asa carries no number but took one of its stream's: a sink on its own once said
    "lost 31,892 (79.9 %) by sequence" of a run that lost nothing. Now it says it cannot know."""
    proc, port = start_sink(loggend, 0, "--idle-exit", "3s")
    result = run_loggend(*RUN, "--target", f"127.0.0.1:{port}", "--sources", "cisco-asa=90,fortigate=10",
                         "--rate", "20000", "--duration", "0.5s", "--pool-size", "10000")
    assert result.returncode == 0, result.stderr
    assert proc.wait(20) == 0
    summary = proc.stdout[proc.stdout.index("sink summary:"):]
    assert re.search(r"loss +unknown: unsequenced beside gaps: 9,000 messages without a sequence number", summary), \
        summary
    assert re.search(r"lost +unknown \(the loss line says why\)", summary), summary      # a long why: said once
    assert not re.search(r"lost +[\d,]+ \(", summary), summary
    assert "received    10,000 events" in summary


def test_a_sink_that_received_nothing_says_it_measured_nothing(loggend):
    proc, _ = start_sink(loggend, 0, "--duration", "1s")
    assert proc.wait(20) == 0
    summary = proc.stdout[proc.stdout.index("sink summary:"):]
    assert re.search(r"lost +unknown \(the sink received nothing: no loss measured\)", summary), summary
    assert "0.0000 %" not in summary


def test_a_max_length_no_message_of_a_source_fits_is_refused_at_load(tmp_path):
    """--max-length 300 with aws-cloudtrail once crashed every worker in a loop (an empty pool)."""
    config = tmp_path / "short.yaml"
    config.write_text("sources: aws-cloudtrail=50,cisco-asa=50\nmessages:\n  max_length: 300\n")
    checked = run_loggend("check-config", str(config))
    ran = run_loggend(*RUN, "--target", "127.0.0.1:9", "--sources", "aws-cloudtrail=50", "--max-length", "300",
                      "--duration", "1s", timeout=30)
    for result, label in ((checked, "messages.max_length: 300"), (ran, "--max-length: '300'")):
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and label in lines[0] and "Traceback" not in result.stderr, lines
        assert re.search(r"expected at least [\d,]+ bytes: aws-cloudtrail's shortest message is [\d,]+ bytes", lines[0])


@pytest.mark.slow
def test_a_source_only_some_of_whose_messages_fit_keeps_its_share(receiver):
    total = 10_000
    result = run_loggend(*RUN, "--target", f"127.0.0.1:{receiver.port}", "--sources", "aws-cloudtrail=50,cisco-asa=50",
                         "--max-length", "1300", "--rate", "20000", "--duration", "0.5s", "--pool-size", "10000")
    assert result.returncode == 0, result.stderr
    assert re.search(r"aws-cloudtrail 50\.0% \(max_length 1,300 leaves out the \d+% of its messages longer than "
                     r"that; its share is made of the others\), cisco-asa 50\.0%", result.stderr), result.stderr
    got = receiver.wait_for(total)
    trail = sum(b" aws-cloudtrail: {" in m for m in got)
    assert abs(100 * trail / len(got) - 50) <= 1.0, trail
    assert all(len(m) <= 1300 for m in got)


FIVE = {"cisco-asa": (30, re.compile(rb" %ASA-\d-\d+: ")),
        "paloalto": (30, re.compile(rb"^<\d+>\S+ +\d+ [\d:]+ \S+ 1,")),
        "windows-security": (20, re.compile(rb" MSWinEventLog\t")), "fortigate": (10, re.compile(rb"^<\d+>date=")),
        "juniper-srx": (10, re.compile(rb"^<\d+>1 \S+ \S+ RT_FLOW "))}


@pytest.mark.slow
def test_the_first_ten_thousand_messages_of_a_default_pool_carry_the_shares(receiver):
    """At the default pool of 100,000 a 30/30/20/10/10 mix once arrived as 27/35.6/13.4/11.9/12.1 %
    over its first 12,000 messages: conversations were ordered by pool-wide epochs."""
    total = 10_000
    mix = ",".join(f"{k}={w}" for k, (w, _) in FIVE.items())
    result = run_loggend(*RUN, "--target", f"127.0.0.1:{receiver.port}", "--sources", mix, "--rate", "10000",
                         "--duration", "2s", "--pool-size", "auto", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "pool 100,000/worker" in result.stderr      # the default pool, not the tests' 10,000
    got = receiver.wait_for(2 * total)[:total]         # loopback keeps the order: the pool's first 10,000
    seen = {name: sum(bool(sig.search(m)) for m in got) for name, (_, sig) in FIVE.items()}
    assert sum(seen.values()) == total, (seen, len(got), result.stderr)
    for name, (weight, _) in FIVE.items():
        assert abs(100 * seen[name] / total - weight) <= 1.0, (name, seen)
