"""Where ``loggend find-limit`` learns what the receiver got: a running total of events, read
before and after each trial.

* ``sink:http://HOST:PORT``: a ``loggend sink --dashboard HOST:PORT`` placed where the SIEM
  forwards or writes what it ingested; its ``/api/metrics`` gives what arrived (received minus
  duplicates) and, beside it, what was lost by sequence number, per stream.
* ``prometheus:http://HOST:PORT`` with ``--feedback-query PROMQL``: the SIEM's own ingestion
  counter through any exporter, e.g. ``sum(siem_events_ingested_total)``; the query's value (the
  sum of a vector) is the running total.
* ``command:CMD``: a shell command that prints the receiver's running total (the last whole number
  it prints), e.g. ``command:wc -l < /var/log/siem/in.log``.

Each reader returns a ``Reading``: the total, and figures worth keeping in the report.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Protocol

from loggend.errors import ConfigError, UsageError

HTTP_TIMEOUT = 5.0
COMMAND_TIMEOUT = 30.0
KINDS = ("sink", "prometheus", "command")
URL_RE = re.compile(r"https?://[^/\s]+/?")
NUMBER_RE = re.compile(rb"\d+")


class FeedbackError(Exception):
    """The receiver's total could not be read (one line for the terminal)."""


@dataclass(frozen=True)
class Reading:
    total: int                                       # events the receiver has counted so far
    figures: dict[str, int] = field(default_factory=dict)   # extra running totals (the sink's loss)
    as_of: float | None = None                       # wall time the receiver took the figures, when it says


class Feedback(Protocol):
    @property
    def text(self) -> str: ...

    def read(self) -> Reading: ...


def _get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:
        raise FeedbackError(f"{url}: HTTP {err.code}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise FeedbackError(f"{url}: {getattr(reason, 'strerror', None) or reason}") from None
    except ValueError:
        raise FeedbackError(f"{url}: not JSON") from None


@dataclass(frozen=True)
class SinkFeedback:
    """A ``loggend sink --dashboard``: what arrived once, and the loss by sequence number."""

    url: str
    text: str

    def read(self) -> Reading:
        doc = _get_json(self.url.rstrip("/") + "/api/metrics")
        sink = doc.get("sink") if isinstance(doc, dict) else None
        if not isinstance(sink, dict) or "received" not in sink:
            raise FeedbackError(f"{self.url}: no sink figures in /api/metrics (is it a loggend sink --dashboard?)")
        figures = {k: int(sink.get(k, 0)) for k in ("received", "duplicates", "lost", "unsequenced", "kernel_drops")}
        as_of = doc.get("time")                      # the sink's sampler takes its figures once per interval
        return Reading(figures["received"] - figures["duplicates"], figures,
                       float(as_of) if isinstance(as_of, (int, float)) else None)


@dataclass(frozen=True)
class PrometheusFeedback:
    """A PromQL query whose value is the receiver's running total (a vector is summed)."""

    url: str
    query: str
    text: str

    def read(self) -> Reading:
        doc = _get_json(self.url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": self.query}))
        if not isinstance(doc, dict) or doc.get("status") != "success":
            why = doc.get("error") if isinstance(doc, dict) else doc
            raise FeedbackError(f"{self.url}: query {self.query!r} failed: {why}")
        data = doc["data"]
        if data["resultType"] == "vector":
            if not data["result"]:
                raise FeedbackError(f"{self.url}: query {self.query!r} returned no series (yet?)")
            value = sum(float(series["value"][1]) for series in data["result"])
        elif data["resultType"] == "scalar":
            value = float(data["result"][1])
        else:
            raise FeedbackError(f"{self.url}: query {self.query!r} returned a {data['resultType']}, "
                                "not an instant vector or a scalar")
        return Reading(round(value))


@dataclass(frozen=True)
class CommandFeedback:
    """A shell command printing the running total: its last whole number is the total."""

    command: str
    text: str

    def read(self) -> Reading:
        try:
            done = subprocess.run(self.command, shell=True, capture_output=True, timeout=COMMAND_TIMEOUT,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise FeedbackError(f"{self.command!r}: no answer within {COMMAND_TIMEOUT:g} s") from None
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise FeedbackError(f"{self.command!r} exited with status {done.returncode}: {tail[0]}")
        numbers = NUMBER_RE.findall(done.stdout)
        if not numbers:
            raise FeedbackError(f"{self.command!r} printed no number")
        return Reading(int(numbers[-1]))


def parse_feedback(text: str, query: str = "") -> Feedback:
    """``--feedback`` (and ``--feedback-query`` for prometheus) -> a reader; bad input is one line."""
    kind, sep, rest = text.partition(":")
    allowed = "sink:http://HOST:PORT, prometheus:http://HOST:PORT (with --feedback-query) or command:CMD"
    if not sep or kind not in KINDS or not rest.strip():
        raise ConfigError("--feedback", text, allowed)
    if kind != "prometheus" and query:
        raise UsageError("--feedback-query: only with --feedback prometheus:http://HOST:PORT")
    if kind == "command":
        return CommandFeedback(rest.strip(), text)
    if not URL_RE.fullmatch(rest.strip()):
        raise ConfigError("--feedback", text, f"{kind}:http://HOST:PORT (the base URL, no path)")
    if kind == "sink":
        return SinkFeedback(rest.strip(), text)
    if not query.strip():
        raise UsageError("--feedback-query: needed with --feedback prometheus:...; a PromQL query whose value is "
                         "the receiver's running total, e.g. sum(siem_events_ingested_total)")
    return PrometheusFeedback(rest.strip(), query.strip(), text)
