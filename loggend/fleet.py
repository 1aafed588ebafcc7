"""A run as one instance of a fleet: its index, the run id the fleet shares, the common start time.

* ``--instance I/N`` (config ``instance:``): this process is instance ``I`` of ``N``. The rate plan
  (``loggend.engine.schedule.Plan``) gives it exactly its share of the total (and of every
  profile segment), and its stream labels carry the instance (``i2.w3``), so a sink tells every
  stream of the fleet apart without being told how many instances there are.
* ``run_id``: one label value for every instance of a run, put on every Prometheus series so a
  fleet adds up with ``sum by (run_id)``; empty means a random one for a lone instance.
* ``--start-at TIME`` (RFC 3339, or ``+30s``): every instance renders, connects and waits, then
  starts at that wall-clock time. A relative time counts from the moment the *process* was
  started (``/proc/self/stat``), not from when Python got round to parsing its flags, so
  instances launched together agree to a few milliseconds however loaded the machine is.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import time
from collections.abc import Callable

from loggend.errors import ConfigError
from loggend.parsers import parse_duration

MAX_INSTANCES = 1000                   # the stream prefix "i999." is at most 5 characters
RUN_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
RUN_ID_BYTES = 4                       # a generated run id: 8 hex digits
INSTANCE_RE = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*", re.ASCII)
STAT_STARTTIME = 19                    # field 22 of /proc/PID/stat (starttime), counted from field 3
MAX_START_AHEAD = 7 * 86400.0          # a start time further ahead than this is a typo


def parse_instance(key: str, value: object) -> tuple[int, int]:
    """``I/N`` -> (I, N) with 0 <= I < N <= MAX_INSTANCES."""
    m = INSTANCE_RE.fullmatch(str(value))
    allowed = f"I/N with 0 <= I < N <= {MAX_INSTANCES}, e.g. 2/3 (the last of 0/3, 1/3, 2/3)"
    if not m:
        raise ConfigError(key, value, allowed)
    if len(m.group(1)) > 9 or len(m.group(2)) > 9:      # more digits than any instance count (or int() takes)
        raise ConfigError(key, value, allowed)
    index, count = int(m.group(1)), int(m.group(2))
    if not 0 <= index < count <= MAX_INSTANCES:
        raise ConfigError(key, value, allowed)
    return index, count


def stream_prefix(instance: int, instances: int) -> str:
    """What goes before a worker's stream label: ``i2.`` in a fleet, nothing for a lone instance."""
    return f"i{instance}." if instances > 1 else ""


def parse_run_id(key: str, value: object) -> str:
    """A Prometheus label value every instance of a run shares; "" = generate one."""
    text = str(value).strip()
    if text and not RUN_ID_RE.fullmatch(text):
        raise ConfigError(key, value, "1 to 64 letters, digits or _.:- (empty: a random one)")
    return text


def new_run_id() -> str:
    return secrets.token_hex(RUN_ID_BYTES)


def process_start_unix(stat_path: str = "/proc/self/stat", clock_ticks: int | None = None,
                       boottime: Callable[[], float] | None = None,
                       wallclock: Callable[[], float] = time.time) -> float:
    """The wall-clock time this process was started (to the kernel's 10 ms tick); now when unknown."""
    now = wallclock()
    try:
        with open(stat_path) as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[STAT_STARTTIME])
        hz = clock_ticks or os.sysconf("SC_CLK_TCK")
        since_boot = boottime() if boottime else time.clock_gettime(time.CLOCK_BOOTTIME)
    except (OSError, ValueError, IndexError):
        return now
    age = since_boot - ticks / hz
    return now - age if 0 <= age < 86400 else now


START_AT = "an RFC 3339 time with its offset, e.g. 2026-11-29T10:53:00Z, or +DURATION such as +30s"


def parse_start_at(key: str, text: str, now: float | None = None, started: float | None = None) -> float:
    """``2026-11-29T10:53:00Z`` (RFC 3339, with its offset) or ``+30s`` (after the process started)
    -> unix seconds; a time already past (or more than a week ahead) is refused."""
    text = str(text).strip()
    now = time.time() if now is None else now
    if text.startswith("+"):
        if text[1:] != text[1:].strip():          # as a duration is written: "+ 5s" is no more one than "5 s"
            raise ConfigError(key, text, START_AT)
        base = process_start_unix() if started is None else started
        try:
            at = base + parse_duration(key, text[1:])
        except ConfigError as err:                # the error shows what was written, its + too
            raise ConfigError(key, text, err.allowed if "at most" in err.allowed else START_AT) from None
    else:
        try:
            when = dt.datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
        except ValueError:
            when = None
        if when is None or when.tzinfo is None:
            raise ConfigError(key, text, START_AT)
        at = when.timestamp()
    if at <= now:
        raise ConfigError(key, text, f"a time still ahead (that one is {now - at:.1f} s past)")
    if at - now > MAX_START_AHEAD:
        raise ConfigError(key, text, f"a time at most {MAX_START_AHEAD / 86400:g} days ahead")
    return at


def format_time(unix: float) -> str:
    """RFC 3339 in UTC with milliseconds: ``2026-11-29T10:53:00.250Z``."""
    return dt.datetime.fromtimestamp(unix, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
