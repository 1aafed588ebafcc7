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

Each reader returns a ``Reading``: the total, and figures worth keeping in the report. A reading
has a deadline of its own as a whole (``HTTP_TIMEOUT``, ``COMMAND_TIMEOUT``): a server that
trickles its answer a byte at a time cannot hold it longer. An answer that is not a count (null,
``"12x"``, NaN, +Inf, negative, a document without its ``data``) is one ``FeedbackError`` naming
it, never a traceback.
"""

from __future__ import annotations

import http.client
import io
import json
import math
import re
import socket
import subprocess
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Protocol

from loggend.errors import ConfigError, UsageError, shown

HTTP_TIMEOUT = 5.0             # a whole HTTP answer, connect to last byte
COMMAND_TIMEOUT = 30.0
MAX_ANSWER = 16 << 20          # bytes of an HTTP answer (a sink's /api/metrics with its streams is far less)
MAX_COUNT = 1 << 63            # a running total must be below this
COUNT_DIGITS = 19              # ... so a number written with fewer digits is read exactly, as an int
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


class _Deadline(io.RawIOBase):
    """A connected socket whose every write and read must end by ``deadline`` (monotonic seconds):
    what ``http.client`` reads and writes through, so the deadline bounds the whole exchange."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self.sock, self.deadline = sock, deadline

    def _arm(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        self.sock.settimeout(left)

    def sendall(self, data: bytes) -> None:
        self._arm()
        self.sock.sendall(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._arm()
        return self.sock.recv_into(buffer)

    def makefile(self, mode: str = "rb") -> io.BufferedReader:
        return io.BufferedReader(self)

    def close(self) -> None:
        """Left open: ``http.client`` closes the connection while its answer is still being read
        (a socket's makefile counts its users; this does not), so ``_fetch`` closes the socket."""


def _fetch(url: str) -> bytes:
    """The body of a GET of ``url``, all of it within ``HTTP_TIMEOUT``."""
    parts = urllib.parse.urlsplit(url)
    deadline = time.monotonic() + HTTP_TIMEOUT
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = kind(parts.hostname or "", parts.port, timeout=HTTP_TIMEOUT)
    sock: socket.socket | None = None
    try:
        conn.connect()
        sock = conn.sock
        conn.sock = _Deadline(sock, deadline)
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""),
                     headers={"Accept": "application/json"})
        response = conn.getresponse()
        if response.status != 200:
            raise FeedbackError(f"{url}: HTTP {response.status}")
        body = response.read(MAX_ANSWER + 1)
    finally:
        conn.close()
        if sock is not None:
            sock.close()
    if len(body) > MAX_ANSWER:
        raise FeedbackError(f"{url}: an answer of over {MAX_ANSWER >> 20} MiB")
    return body


def _get_json(url: str) -> Any:
    try:
        return json.loads(_fetch(url))
    except TimeoutError:
        raise FeedbackError(f"{url}: no whole answer within {HTTP_TIMEOUT:g} s") from None
    except http.client.HTTPException as err:
        raise FeedbackError(f"{url}: not an HTTP answer ({type(err).__name__})") from None
    except OSError as err:
        raise FeedbackError(f"{url}: {err.strerror or err}") from None
    except (ValueError, RecursionError):
        raise FeedbackError(f"{url}: not JSON") from None


def count_of(where: str, what: str, value: object, low: int = 0) -> int:
    """A running total from an answer: a whole number from ``low`` (a float or a number written as
    text is rounded); anything else is one line naming it."""
    number: float = math.nan
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < COUNT_DIGITS:
        number = int(value)
    elif isinstance(value, (float, str)):
        try:
            number = float(value)
        except ValueError:
            pass
    if not low <= number < MAX_COUNT:                      # NaN is not either
        raise FeedbackError(f"{where}: {what} is {shown(value)}, not a count of events")
    return round(number)


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
        figures = {k: count_of(self.url, f"sink.{k} in /api/metrics", sink.get(k, 0), -MAX_COUNT if k == "lost" else 0)
                   for k in ("received", "duplicates", "lost", "unsequenced", "kernel_drops")}   # lost: gaps - late
        as_of = doc.get("time")                      # the sink's sampler takes its figures once per interval
        dated = isinstance(as_of, (int, float)) and not isinstance(as_of, bool) and math.isfinite(as_of)
        return Reading(figures["received"] - figures["duplicates"], figures, float(as_of) if dated else None)


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
            raise FeedbackError(f"{self.url}: query {self.query!r} failed: {shown(why)}")
        data = doc.get("data")
        kind, result = (data.get("resultType"), data.get("result")) if isinstance(data, dict) else (None, None)
        where = f"{self.url}: query {self.query!r}"
        if kind == "vector" and isinstance(result, list):
            if not result:
                raise FeedbackError(f"{where} returned no series (yet?)")
            values = [self._value(series.get("value") if isinstance(series, dict) else None) for series in result]
            return Reading(count_of(where, "the sum of its series", sum(values)))
        if kind == "scalar":
            return Reading(count_of(where, "its value", self._value(result)))
        raise FeedbackError(f"{where} returned {shown(data)}, not an instant vector or a scalar")

    def _value(self, sample: object) -> float:
        """A sample ``[time, "value"]``: its value, which must be a count (not NaN, +Inf, -1...)."""
        value = sample[1] if isinstance(sample, list) and len(sample) == 2 else sample
        return float(count_of(f"{self.url}: query {self.query!r}", "a sample", value))


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
        return Reading(count_of(repr(self.command), "its last number", numbers[-1].decode()))


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
