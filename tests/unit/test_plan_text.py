"""The summary's planned line says why events were not sent, by the kind of failure."""

from loggend.report.console import plan_text
from loggend.report.totals import RunTotals


def totals(**errors: int) -> RunTotals:
    base = {"refused": 0, "queue_full": 0, "unreachable": 0, "other": 0}
    base.update(errors)
    return RunTotals(target="127.0.0.1:5140", rate=1000, seconds=10, sent=10_000 - sum(errors.values()), bytes=0,
                     errors=base, restarts=0, transport="tls", planned=10_000)


def test_refusals_alone_are_refused_by_the_kernel() -> None:
    assert plan_text(totals(refused=904)).endswith("904 refused by the kernel")


def test_failures_of_other_kinds_are_named_as_they_are() -> None:
    """TLS handshakes that timed out were all called 'refused by the kernel' beside 'errors refused=904
    other=5,850'."""
    text = plan_text(totals(refused=904, other=5_850))
    assert "refused by the kernel" not in text
    assert text.endswith("6,754 not sent, the send failed: 904 refused, 5,850 other")
