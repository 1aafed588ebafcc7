"""The soak's verdicts from samples: a leak, a descriptor creeping up, inexact counts each fail."""

from loggend.tools.soak import MIB, SoakSample, checks, slope

SUMMARY = {"sent": 1000, "lost": 0, "loss_verdict": "counted", "sink": {"received": 1000}}


def samples(memory_per_hour: float = 0.0, fds_every: float = 0.0, noise: int = 0) -> list[SoakSample]:
    out = []
    for i in range(361):                                  # an hour, a sample every 10 s
        t = i * 10.0
        memory = 200 * MIB + int(memory_per_hour * t / 3600) + (noise if i % 2 else -noise)
        fds = 160 + (int(t // fds_every) if fds_every else 0)
        out.append(SoakSample(t, memory + 10 * MIB * (i % 3), memory, fds, 7, 6, i * 1000, i * 1000))
    return out


def by_name(results: list[dict]) -> dict[str, dict]:
    return {r["check"]: r for r in results}


def test_a_flat_run_with_exact_counts_passes_despite_noise() -> None:
    results = checks(samples(noise=300_000), warmup=360, max_growth=MIB, summary=SUMMARY)
    assert all(r["pass"] for r in results), results
    assert set(by_name(results)) == {"memory growth", "fds flat", "threads flat", "processes flat", "counts exact"}


def test_memory_growing_two_mib_an_hour_fails() -> None:
    got = by_name(checks(samples(memory_per_hour=2 * MIB), warmup=360, max_growth=MIB, summary=SUMMARY))
    assert not got["memory growth"]["pass"]
    assert abs(got["memory growth"]["per_hour_bytes"] - 2 * MIB) < 0.05 * MIB


def test_half_a_mib_an_hour_passes() -> None:
    got = by_name(checks(samples(memory_per_hour=MIB / 2), warmup=360, max_growth=MIB, summary=SUMMARY))
    assert got["memory growth"]["pass"]


def test_a_descriptor_leaked_every_twenty_minutes_fails() -> None:
    got = by_name(checks(samples(fds_every=1200), warmup=360, max_growth=MIB, summary=SUMMARY))
    assert not got["fds flat"]["pass"] and got["fds flat"]["last"] > got["fds flat"]["first"]


def test_counts_that_are_not_exact_fail() -> None:
    lossy = {"sent": 1000, "lost": 3, "loss_verdict": "counted", "sink": {"received": 997}}
    assert not by_name(checks(samples(), 360, MIB, lossy))["counts exact"]["pass"]
    unknown = {"sent": 1000, "lost": None, "loss_verdict": "unknown", "sink": {"received": 1000}}
    assert not by_name(checks(samples(), 360, MIB, unknown))["counts exact"]["pass"]
    assert not by_name(checks(samples(), 360, MIB, None))["counts exact"]["pass"]


def test_too_few_samples_after_the_warm_up_fail() -> None:
    got = by_name(checks(samples()[:30], warmup=360, max_growth=MIB, summary=SUMMARY))
    assert not got["steady samples"]["pass"]


def test_slope_is_least_squares() -> None:
    assert slope([(0, 1), (1, 3), (2, 5)]) == 2
    assert slope([(5, 1)]) == 0


def test_a_soak_too_short_for_a_growth_per_hour_says_so_and_fails() -> None:
    """A 60 s soak once 'failed' at +8.95 MiB/h: a 0.1 MiB wobble over 30 s, scaled to an hour."""
    got = by_name(checks(samples()[:12], warmup=0, max_growth=MIB, summary=SUMMARY))      # 110 s of samples
    assert not got["memory growth"]["pass"] and got["memory growth"]["per_hour_bytes"] is None
    assert got["memory growth"]["shown"].startswith("too short to measure: 110 s after the warm-up")
