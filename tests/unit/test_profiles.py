"""Rate profiles: each segment kind's closed-form integral, the syntax both ways, and the plan's live
changes (pause, resume, scaling) keeping every count continuous and the total exact."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loggend.config import load
from loggend.engine.pacing import Pacer
from loggend.engine.schedule import NS, Burst, Constant, Plan, Profile, Ramp, Sine, Steps
from loggend.errors import ConfigError, UsageError
from loggend.profiles import format_profile, format_rate, format_seconds, parse_profile

T0 = 1000 * NS
rates = st.floats(0, 200_000)
lengths = st.floats(0.05, 20)


def numeric(segment, seconds: float, steps: int = 20_000) -> float:
    """The midpoint-rule integral of ``rate_at`` (a check on the closed forms)."""
    h = seconds / steps
    return sum(segment.rate_at((k + 0.5) * h) for k in range(steps)) * h


segments = st.one_of(
    st.builds(Constant, rates, lengths),
    st.builds(Ramp, rates, rates, lengths),
    st.builds(lambda a, b, n, each: Steps(a, b, max(abs(b - a) / n, 1.0), each), rates, rates,
              st.integers(1, 6), st.floats(0.1, 3)),
    st.builds(lambda base, peak, f, every, n: Burst(base, peak, f * every, every, n * every),
              rates, rates, st.floats(0.1, 0.9), st.floats(0.2, 3), st.integers(1, 4)),
    st.builds(lambda lo, hi, period, n: Sine(min(lo, hi), max(lo, hi), period, n * period / 2),
              rates, rates, st.floats(0.5, 10), st.integers(1, 5)),
)


@settings(max_examples=60, deadline=None)
@given(segments)
def test_each_kind_integrates_its_own_rate_exactly(segment):
    total = segment.events(segment.seconds)
    tolerance = max(segment.end_rate, segment.rate_at(0), 1.0) * segment.seconds * 2e-3 + 1
    assert total == pytest.approx(numeric(segment, segment.seconds), abs=tolerance)
    # and it never runs backwards (due counts never go down)
    points = [segment.events(segment.seconds * k / 50) for k in range(51)]
    assert all(b >= a - 1e-6 for a, b in zip(points, points[1:]))
    assert segment.events(0) == 0


def test_closed_forms_by_hand():
    assert Ramp(1000, 3000, 2).events(2) == 4000 and Ramp(1000, 3000, 2).rate_at(1) == 2000
    steps = Steps(10_000, 95_000, 10_000, 1)            # 10k, 20k ... 90k, then the last step is 95k itself
    assert steps.count == 10 and steps.seconds == 10 and steps.rate_at(9.5) == 95_000 and steps.rate_at(3.2) == 40_000
    assert steps.events(10) == sum(range(10_000, 100_000, 10_000)) + 95_000
    assert Steps(5000, 1000, 2000, 1).count == 3 and Steps(5000, 1000, 2000, 1).rate_at(1.5) == 3000   # going down
    burst = Burst(100, 1000, 0.5, 2)                     # each 2 s: 0.5 s at 1000, then 1.5 s at 100
    assert burst.events(2) == 650 and burst.events(5) == 1300 + 500 + 50 and burst.rate_at(4.2) == 1000
    sine = Sine(0, 2000, 4)                              # starts at min, peaks half a period in
    assert sine.rate_at(0) == 0 and sine.rate_at(2) == pytest.approx(2000) and sine.events(4) == pytest.approx(4000)


def test_a_profile_holds_its_last_rate_or_repeats():
    held = Profile((Ramp(0, 1000, 2), Constant(500, 1), Ramp(500, 2000, 1)))
    assert held.events(4) == 1000 + 500 + 1250 and held.rate_at(100) == 2000
    assert held.events(10) == held.events(4) + 2000 * 6
    burst_end = Profile((Burst(100, 1000, 0.5, 2, 3),))  # ends 1 s into a cycle: at the base rate
    assert burst_end.rate_at(50) == 100
    looped = Profile((Ramp(0, 1000, 2), Constant(500, 1)), repeat=True)
    assert looped.period == 3 and looped.events(3) == 1500 and looped.events(7.5) == 2 * 1500 + 1000 * 1.5**2 / 4
    assert looped.rate_at(6.5) == 250
    assert Profile((Constant(250, 5),)).flat == 250 and Profile.constant(0).unlimited and held.flat is None
    with pytest.raises(ValueError):
        Profile((Constant(1), Constant(2, 1)))           # only the last may last for ever
    with pytest.raises(ValueError):
        Profile((Constant(1),), repeat=True)


@pytest.mark.parametrize("text", [
    "ramp:10k-200k/1m,constant:200k/5m",
    "steps:10k-95k+10k/30s,burst:20k-200k/5s/1m/10m,sine:10k-100k/10m/1h,repeat",
    "constant:0/2s,constant:1.5k/0.25s,ramp:1234567-1/1h",
    "burst:0-4M/100ms/1s",
])
def test_the_compact_form_reads_back_to_the_same_profile(text):
    profile = parse_profile("--profile", text)
    assert profile is not None and parse_profile("--profile", format_profile(profile)) == profile


def test_the_yaml_list_and_the_compact_form_are_the_same_profile():
    listed = parse_profile("profile", [{"ramp": {"from": "10k", "to": 200_000, "for": "60s"}},
                                       {"steps": {"from": "1k", "to": "3k", "step": "1k", "each": 10}},
                                       "burst:1k-2k/1s/10s/1m", {"sine": {"min": 0, "max": "2k", "period": "5s"}}])
    assert listed == parse_profile("--profile", "ramp:10k-200k/60s,steps:1k-3k+1k/10s,burst:1k-2k/1s/10s/1m,"
                                                "sine:0-2k/5s")
    assert parse_profile("profile", ["constant:1k/1s", "repeat"]).repeat
    assert parse_profile("profile", []) is None and parse_profile("profile", "") is None


@pytest.mark.parametrize("value,why", [
    ("ramp:10k/60s", "ramp:FROM-TO/FOR"),
    ("constant:fast", "rate in events per second"),
    ("ramp:1k-2k/0s", "longer than 0 s"),
    ("constant:1k,constant:2k", "'for' in every segment but the last"),
    ("constant:1k/5s,sine:1-2/3s,repeat", "'for' in every segment of a profile that repeats"),
    ("burst:1k-2k/10s/5s", "peak_for shorter than every"),
    ("sine:5k-1k/10s", "min <= max"),
    ("steps:1k-5k+0/10s", "a step above 0"),
    ("constant:0.4", "rate in events per second: 0 (none), or from 1 to"),
    ("ramp:0-2k/1s,sine:0.5-2/3s", "min in events per second: 0 (none), or from 1 to"),
    ([{"ramp": {"from": "1k", "for": "3s"}}], "a ramp segment with from, to, for"),
    ([{"ramp": {"from": "1k", "to": "2k", "for": "3s", "peak": 1}}], "a ramp segment with"),
    ([{"zigzag": {}}], "segments such as"),
    (42, "a list of segments"),
])
def test_bad_profiles_are_one_line_naming_the_key_and_segment(value, why):
    with pytest.raises(ConfigError, match=r"^--profile.*" + why.replace("(", r"\(").replace(")", r"\)")):
        parse_profile("--profile", value)


def test_formatting_of_rates_and_durations():
    assert [format_rate(r) for r in (250_000, 4e6, 1500, 12_345.5, 0, math.inf)] == \
        ["250k", "4M", "1.5k", "12345.5", "0", "unlimited"]
    assert [format_seconds(s) for s in (3600, 300, 90, 0.25)] == ["1h", "5m", "90s", "0.25s"]


# --- the config: rate or profile --------------------------------------------------------------------

def test_a_profile_in_the_file_or_as_a_flag(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("profile:\n  - ramp: {from: 1k, to: 3k, for: 2s}\n  - constant: {rate: 3k}\n")
    c = load(str(path), usable_cpus={0})
    assert c.profile() == Profile((Ramp(1000, 3000, 2), Constant(3000))) and "profile ramp:1k-3k/2s" in c.describe()
    # a flag wins over the file, whichever of the two it is
    assert load(str(path), {"rate": ("--rate", "5k")}, usable_cpus={0}).profile() == Profile.constant(5000)
    path.write_text("rate: 5k\n")
    assert load(str(path), {"profile": ("--profile", "constant:1k")}, usable_cpus={0}).profile() == \
        Profile((Constant(1000),))
    path.write_text("rate: 5k\nprofile: constant:1k\n")
    with pytest.raises(UsageError, match="rate and .*profile: give one of them"):
        load(str(path), usable_cpus={0})


# --- the plan: exact totals through live changes ----------------------------------------------------

PROFILE = Profile((Ramp(1000, 5000, 2), Steps(5000, 1000, 2000, 0.5), Burst(200, 3000, 0.3, 1, 2),
                   Sine(500, 2500, 1.5)))


def total(plan: Plan, t_ns: int, workers: int) -> int:
    return sum(plan.due(i, t_ns) for i in range(workers))


@settings(max_examples=40, deadline=None)
@given(st.floats(0.0, 9.0), st.floats(0.0, 9.0), st.integers(1, 7))
def test_a_timed_profile_sends_the_floor_of_its_integral_whatever_the_pause(pause_at, paused_for, workers):
    duration = 9.0
    plan = Plan(PROFILE, workers).start(T0, duration)
    expected = math.floor(PROFILE.events(duration))
    assert sum(plan.quota(i) for i in range(workers)) == expected
    t_pause = T0 + round(pause_at * NS)
    before = [plan.due(i, t_pause) for i in range(workers)]
    paused = plan.paused_at(t_pause)
    later = t_pause + round(paused_for * NS)
    assert [paused.due(i, later) for i in range(workers)] == before          # frozen: nothing due meanwhile
    assert paused.end_ns == 0 and paused.rate_now(later) == 0 and paused.quota(0) is None
    resumed = paused.resumed_at(later)
    assert [resumed.due(i, later) for i in range(workers)] == before          # continuous through the resume
    assert resumed.end_ns == plan.end_ns + (later - t_pause) and resumed.paused_ns == later - t_pause
    assert sum(resumed.quota(i) for i in range(workers)) == expected          # still exactly the integral
    # and the rate goes on where the profile was
    assert resumed.rate_now(later + NS // 10) == pytest.approx(plan.rate_now(t_pause + NS // 10), rel=1e-9)


def test_scaling_keeps_the_phase_and_the_counts():
    plan = Plan(PROFILE, 3).start(T0, 0)
    t = T0 + round(1.25 * NS)
    doubled = plan.scaled(2.0, t)
    assert total(doubled, t, 3) == total(plan, t, 3)
    assert doubled.rate_now(t) == pytest.approx(2 * plan.rate_now(t))
    later = t + NS // 2
    assert total(doubled, later, 3) - total(doubled, t, 3) == pytest.approx(
        2 * (PROFILE.events(1.75) - PROFILE.events(1.25)), abs=3)
    halved_while_paused = doubled.paused_at(later).scaled(0.5, later + NS).resumed_at(later + 2 * NS)
    assert halved_while_paused.rate_now(later + 2 * NS) == pytest.approx(plan.rate_now(later), rel=1e-9)


def test_a_new_profile_or_end_while_paused_waits_for_the_resume():
    plan = Plan(Profile.constant(1000), 2).start(T0, 10.0)
    t = T0 + 4 * NS
    paused = plan.paused_at(t).with_profile(Profile.constant(3000), t + NS).with_end(plan.end_ns + 2 * NS)
    assert paused.rate_now(t + NS) == 0 and paused.pause.end_left_ns == 8 * NS
    resumed = paused.resumed_at(t + 3 * NS)
    assert resumed.rate_now(t + 3 * NS) == 3000 and resumed.end_ns == t + 11 * NS
    assert total(resumed, resumed.end_ns, 2) == 4000 + 3000 * 8
    assert Plan.from_document(paused.document()) == paused


def test_the_pacer_waits_while_paused_and_goes_on_after():
    plan = Plan(Profile.constant(10_000), 1).start(T0, 0)
    pacer = Pacer(plan, 0)
    t = T0 + NS
    sent = plan.due(0, t)
    pacer.set_plan(plan.paused_at(t))
    assert pacer.grant((t + NS // 2) / NS, sent) == 0 and pacer.wait((t + NS // 2) / NS) > 0
    pacer.set_plan(pacer.plan.resumed_at(t + NS))
    assert pacer.grant((t + NS + NS // 10) / NS, sent) == pacer.max_burst and pacer.behind == 1000


def test_an_unlimited_plan_rebased_on_what_was_sent_takes_a_rate_again():
    t0 = 10 * NS
    plan = Plan(Profile.constant(0), workers=2).start(t0, 0)
    assert plan.unlimited and plan.events(t0 + NS) == float("inf")
    rebased = plan.rebased(t0 + NS, (700, 900)).with_profile(Profile.constant(1000), t0 + NS)
    assert [rebased.due(i, t0 + NS) for i in (0, 1)] == [700, 900]
    assert [rebased.due(i, t0 + 3 * NS) for i in (0, 1)] == [1700, 1900]          # 1,000 ev/s from there


def test_long_segments_write_back_in_a_form_that_parses_and_an_empty_flag_is_refused():
    from loggend.errors import UsageError
    from loggend.profiles import format_profile, parse_profile
    long = parse_profile("--profile", "constant:1k/3000d")
    assert "e+" not in format_profile(long) and parse_profile("profile", format_profile(long)) == long
    with pytest.raises(UsageError, match="an empty one is none"):
        parse_profile("--profile", " ")
    assert parse_profile("profile", "") is None                         # the config's default: no profile
