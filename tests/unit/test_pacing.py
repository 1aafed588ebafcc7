from loggend.engine.pacing import BURST_SECONDS, MAX_LAG_SECONDS, UNLIMITED_GRANT, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def drive(bucket: TokenBucket, clock: FakeClock, seconds: float, step: float) -> list[tuple[float, int]]:
    """Grant and take everything available every ``step`` seconds."""
    grants = []
    end = clock.now + seconds
    while clock.now < end:
        n = bucket.available(clock.now)
        while n:
            bucket.take(n)
            grants.append((clock.now, n))
            n = bucket.available(clock.now)
        clock.now += step
    return grants


def test_absolute_schedule_has_no_drift():
    clock = FakeClock()
    bucket = TokenBucket(123_456, clock)
    drive(bucket, clock, 100.0, 0.000_37)      # an awkward step: rounding must not accumulate
    expected = 123_456 * 100.0
    assert abs(bucket.granted - expected) <= bucket.burst + 1


def test_bursts_are_about_a_millisecond_of_traffic():
    clock = FakeClock()
    bucket = TokenBucket(1_000_000, clock)
    grants = drive(bucket, clock, 1.0, 0.0001)
    assert max(n for _, n in grants) == 1_000_000 * BURST_SECONDS
    per_10ms: dict[int, int] = {}
    for t, n in grants:
        per_10ms[int((t - 1000.0) * 100)] = per_10ms.get(int((t - 1000.0) * 100), 0) + n
    assert max(per_10ms.values()) <= 10_000 + bucket.burst


def test_low_rates_send_one_event_at_a_time_on_schedule():
    clock = FakeClock()
    bucket = TokenBucket(1, clock)
    grants = drive(bucket, clock, 10.0, 0.01)
    assert 10 <= len(grants) <= 11 and all(n == 1 for _, n in grants)   # event 0 is due at start
    gaps = [b[0] - a[0] for a, b in zip(grants, grants[1:])]
    assert all(abs(g - 1.0) < 0.011 for g in gaps)


def test_delay_points_at_the_next_burst():
    clock = FakeClock()
    bucket = TokenBucket(1000, clock)
    bucket.take(bucket.available(clock.now))
    assert bucket.available(clock.now) == 0
    wait = bucket.delay(clock.now)
    assert 0.0009 < wait <= 0.0011
    clock.now += wait
    assert bucket.available(clock.now) == 1


def test_a_stall_is_caught_up_only_up_to_the_lag_limit():
    clock = FakeClock()
    bucket = TokenBucket(10_000, clock)
    clock.now += 5.0                                  # the sender stalled for five seconds
    caught_up = 0
    while n := bucket.available(clock.now):
        bucket.take(n)
        caught_up += n
    assert caught_up <= 10_000 * MAX_LAG_SECONDS + bucket.burst


def test_rate_zero_is_unlimited_and_never_waits():
    clock = FakeClock()
    bucket = TokenBucket(0, clock)
    assert bucket.available(clock.now) == UNLIMITED_GRANT
    assert bucket.delay(clock.now) == 0.0


def test_set_rate_restarts_the_schedule():
    clock = FakeClock()
    bucket = TokenBucket(1000, clock)
    drive(bucket, clock, 1.0, 0.001)
    bucket.set_rate(5000)
    drive(bucket, clock, 1.0, 0.001)
    assert abs(bucket.granted - 5000) <= bucket.burst + 1
