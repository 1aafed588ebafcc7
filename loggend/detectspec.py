"""What ``--detect`` (and the config's ``detect:``) asks for, checked: ``command:CMD``, ``prometheus:URL``
with a PromQL query, or ``webhook``; and the bounds of ``detect_timeout``. The detectors themselves are
``loggend.control.detect``'s.
"""

from __future__ import annotations

import shlex
import urllib.parse
from dataclasses import dataclass

from loggend.errors import ConfigError

DEFAULT_TIMEOUT = 120.0         # seconds after its first event an instance is missed
MIN_TIMEOUT = 1.0
MAX_TIMEOUT = 86_400.0
KINDS = ("command", "prometheus", "webhook")


@dataclass(frozen=True)
class DetectSpec:
    kind: str                   # command | prometheus | webhook
    target: str = ""            # the command line, or Prometheus's base URL
    query: str = ""             # prometheus: the PromQL

    def describe(self) -> str:
        return f"{self.kind}:{self.target}" if self.target else self.kind


def parse_detect(label: str, text: object, query: str = "") -> DetectSpec:
    allowed = "command:CMD, prometheus:URL (with --detect-query) or webhook"
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(label, text, allowed)
    kind, sep, target = text.strip().partition(":")
    if kind == "webhook" and not target:
        return DetectSpec("webhook")
    if kind not in KINDS or not sep or not target.strip():
        raise ConfigError(label, text, allowed)
    if kind == "command":
        try:
            if not shlex.split(target):
                raise ValueError
        except ValueError:
            raise ConfigError(label, text, "command:CMD with a command line a shell would split") from None
        return DetectSpec("command", target.strip())
    url = urllib.parse.urlsplit(target.strip())
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(label, text, "prometheus:http://HOST:PORT (Prometheus's base URL)")
    if not query.strip():
        raise ConfigError("--detect-query", query, "a PromQL query for --detect prometheus:URL")
    return DetectSpec("prometheus", target.strip().rstrip("/"), query.strip())
