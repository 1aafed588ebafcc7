"""The rate plan and the pacer, on a fake clock: exact counts, burst sizes, catch-up, forgiveness."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loggend.engine.pacing import (
    CATCHUP_SPEEDUP,
    FRAME,
    MAX_BURST_EVENTS,
    MAX_BURST_SECONDS,
    MAX_LAG_SECONDS,
    UNLIMITED_GRANT,
    Pacer,
)
from loggend.engine.schedule import NS, Constant, Plan, Profile, share

T0 = 1000.0                      # seconds on the fake monotonic clock


def started(rate: float, workers: int = 1, duration: float = 0.0, **kw) -> Plan:
    return Plan(Profile.constant(rate), workers, **kw).start(int(T0 * NS), duration)


def drive(pacer: Pacer, seconds: float, step: float, start: float = T0, sent: int = 0) -> list[tuple[float, int]]:
    """Grant and 'send' everything granted every ``step`` seconds; the list of (time, burst)."""
    grants = []
    now = start
    while now < start + seconds:
        n = pacer.grant(now, sent)
        if n:
            sent += n
            grants.append((now, n))
            continue
        now += step
    return grants


@given(st.integers(0, 10**12), st.integers(1, 64))
def test_shares_add_up_and_never_go_back(total, parts):
    assert sum(share(total, i, parts) for i in range(parts)) == total
    assert all(share(total + 1, i, parts) >= share(total, i, parts) for i in range(parts))
    assert max(share(total, i, parts) for i in range(parts)) - min(share(total, i, parts) for i in range(parts)) <= 1


def test_no_drift_over_a_long_run_at_an_awkward_rate():
    pacer = Pacer(started(123_456), 0)
    grants = drive(pacer, 100.0, 0.000_37)
    assert abs(sum(n for _, n in grants) - 123_456 * 100) <= pacer.max_burst


def test_a_timed_run_sends_its_quota_exactly_over_the_workers():
    plan = started(10_007, workers=7, duration=3.3)
    quotas = [plan.quota(i) for i in range(7)]
    assert sum(quotas) == math.floor(10_007 * 3.3) and max(quotas) - min(quotas) <= 1
    for i in range(7):
        pacer = Pacer(plan, i)
        grants = drive(pacer, 3.31, 0.003)
        assert sum(n for _, n in grants) == quotas[i]          # the last, partial burst goes out at the end


@pytest.mark.parametrize("rate,first,most", [
    (5_000, FRAME, 100),            # a worker of 40 at 200k: a full frame per wake-up, never more than 20 ms
    (25_000, FRAME, 500),
    (500_000, 500, 10_000),         # fast workers: a millisecond of traffic per wake-up
    (1_000, 20, 20),                # slow ones: 20 ms of traffic, though that is less than a frame
    (10, 1, 1),
])
def test_burst_sizes_a_frame_at_least_and_20_ms_at_most(rate, first, most):
    pacer = Pacer(started(rate), 0)
    grants = drive(pacer, 2.0, 0.0002)
    sizes = [n for _, n in grants[1:]]
    assert min(sizes) >= min(first, most) and max(sizes) <= most
    assert pacer.max_burst == max(1, math.floor(rate * MAX_BURST_SECONDS))
    wakeups = len(grants) / 2.0
    assert wakeups <= rate / min(first, most) * 1.05 + 2          # few wake-ups: one per burst


def test_per_10ms_traffic_never_exceeds_20ms_worth():
    pacer = Pacer(started(5_000), 0)
    grants = drive(pacer, 3.0, 0.0005)
    per_window: dict[int, int] = {}
    for t, n in grants:
        per_window[int((t - T0) / 0.010)] = per_window.get(int((t - T0) / 0.010), 0) + n
    assert max(per_window.values()) <= 5_000 * 0.020


def test_a_late_start_catches_up_at_twice_the_rate_and_forgives_beyond_a_second():
    rate = 10_000
    pacer = Pacer(started(rate), 0)
    # the worker starts 1.5 s late (a restart): 1 s is made up, 0.5 s is forgiven and counted
    grants = drive(pacer, 3.0, 0.0005, start=T0 + 1.5)
    assert pacer.forgiven == pytest.approx(rate * (1.5 - MAX_LAG_SECONDS), abs=pacer.max_burst + 1)
    sent = sum(n for _, n in grants)
    assert sent + pacer.forgiven == pytest.approx(rate * 4.5, abs=pacer.max_burst + 1)
    # catching up: at most CATCHUP_SPEEDUP x the rate in any 100 ms, never one flood
    per_100ms: dict[int, int] = {}
    for t, n in grants:
        per_100ms[int((t - T0) * 10)] = per_100ms.get(int((t - T0) * 10), 0) + n
    assert max(per_100ms.values()) <= rate * 0.1 * CATCHUP_SPEEDUP + pacer.max_burst
    assert max(n for _, n in grants) <= rate * MAX_BURST_SECONDS


def test_past_the_end_the_last_burst_is_what_is_due_with_debt_older_than_a_second_forgiven():
    pacer = Pacer(started(1000, duration=4.0), 0)
    pacer.grant(T0 + 1.0, 0)                                      # sized for its rate
    assert pacer.last(T0 + 6.0, 3500) == 500 and pacer.forgiven == 0     # 0.5 s behind: all of it
    assert pacer.last(T0 + 6.0, 1000) == 1000 and pacer.forgiven == 2000  # 3 s behind: 1 s, the rest counted
    assert pacer.quota() == 2000                                  # the worker's count net of what was given up
    assert Pacer(started(0), 0).last(T0 + 6.0, 0) == 0            # unlimited: no count to finish


def test_refused_events_are_charged_not_retried_in_a_storm():
    pacer = Pacer(started(10_000), 0)
    sent = 0
    now = T0
    attempts = 0
    while now < T0 + 1.0:
        n = pacer.grant(now, sent)
        if n:
            attempts += 1
            pacer.charge(n)                  # every send refused (nobody listens)
        now += 0.001
    assert pacer.charged == pytest.approx(10_000, abs=pacer.max_burst + 1)
    assert attempts <= 10_000 / FRAME + 2


def test_unlimited_grants_without_waiting_until_the_end():
    plan = started(0, duration=1.0)
    pacer = Pacer(plan, 0)
    assert plan.unlimited and pacer.quota() is None
    assert pacer.grant(T0 + 0.5, 10**9) == UNLIMITED_GRANT
    assert pacer.grant(T0 + 1.0, 10**9) == 0


def test_nothing_is_due_before_the_start():
    plan = Plan(Profile.constant(1000), 1)
    pacer = Pacer(plan, 0)
    assert not plan.started and pacer.grant(T0 + 100, 0) == 0 and pacer.wait(T0) > 0


def test_a_rate_change_keeps_every_count_continuous():
    plan = started(12_000, workers=3)
    t = int((T0 + 2.5) * NS)
    before = [plan.due(i, t) for i in range(3)]
    changed = plan.with_profile(Profile.constant(30_000), t)
    assert [changed.due(i, t) for i in range(3)] == before
    later = int((T0 + 3.5) * NS)
    assert sum(changed.due(i, later) for i in range(3)) == 12_000 * 2.5 + 30_000


def test_a_new_worker_count_starts_an_epoch_from_each_index_due_count():
    plan = started(9_000, workers=3)
    t = int((T0 + 2.0) * NS)
    due = [plan.due(i, t) for i in range(3)]
    grown = plan.with_workers(5, t, carried={3: 0, 4: 0})
    assert [grown.due(i, t) for i in range(5)] == due + [0, 0]
    later = int((T0 + 3.0) * NS)
    assert sum(grown.due(i, later) for i in range(5)) == 9_000 * 3
    shrunk = plan.with_workers(2, t, carried={})
    assert sum(shrunk.due(i, later) for i in range(2)) == sum(due[:2]) + 9_000


def test_epochs_add_up_to_the_integral_with_a_fraction_pending_and_retired_debts_go_on():
    """A worker-count change at a moment when part of an event is due must not drop it (a timed
    run with a reload planned 143,999 of 144,000); what retired workers owed is added at once."""
    plan = started(12_000, workers=4, duration=12, instance=1, instances=3)
    t = int((T0 + 2.0001) * NS)                     # 4,000.4 events of this instance's share due
    end = plan.end_ns
    total = sum(plan.due(i, end) for i in range(4))
    again = plan.with_workers(3, t, carried={}).with_workers(6, t + 12_345_678, carried={3: 0, 4: 0, 5: 0})
    assert sum(again.due(i, end) for i in range(6)) + plan.due(3, t) == total     # worker 3 retired at t
    owed, soon = again.with_events(77), t + 20_000_000
    assert sum(owed.due(i, soon) for i in range(6)) == sum(again.due(i, soon) for i in range(6)) + 77


def test_the_plan_survives_the_board_round_trip():
    plan = started(4_000, workers=4, duration=30, instance=1, instances=3).with_workers(5, int((T0 + 1) * NS), {4: 7})
    assert Plan.from_document(plan.document()) == plan


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(1, 50_000), st.floats(0.1, 5)), min_size=1, max_size=5),
       st.booleans(), st.floats(0, 40))
def test_a_profile_is_the_integral_of_its_rates(segments, repeat, dt):
    profile = Profile(tuple(Constant(r, s) for r, s in segments), repeat)
    step = 0.001
    approx = sum(profile.rate_at(k * step) * step for k in range(int(dt / step)))
    assert profile.events(dt) == pytest.approx(approx, rel=0.02, abs=max(r for r, _ in segments) * 0.01)


def test_instances_split_the_run_exactly():
    plans = [started(7_777, workers=4, duration=10, instance=i, instances=3) for i in range(3)]
    assert sum(p.quota(w) for p in plans for w in range(4)) == 77_770


def test_a_rate_no_worker_reaches_is_granted_in_bounded_bursts_and_the_end_holds():
    """400M ev/s asked of one worker: 20 ms would be 8M events in one send, seconds of it; each burst is
    at most MAX_BURST_EVENTS, so the worker looks at the clock (and the run's end) between them."""
    pacer = Pacer(started(400e6, duration=1.0), 0)
    grants = drive(pacer, 0.05, 0.001)
    assert grants and max(n for _, n in grants) == MAX_BURST_EVENTS
    assert pacer.grant(T0 + 1.5, 10**6) == MAX_BURST_EVENTS          # after the end: what is left, a burst at a time
