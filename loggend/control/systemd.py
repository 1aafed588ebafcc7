"""sd_notify(3) by hand: READY, STATUS, WATCHDOG, RELOADING, STOPPING.

A no-op without ``NOTIFY_SOCKET``; ``@`` names an abstract socket; it never raises, because a
lost notification must not stop a load test. The environment is a parameter (a test seam).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

WATCHDOG_FRACTION = 0.5      # ping at half the watchdog period, as sd_watchdog_enabled(3) advises


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_usec = self._watchdog_usec(env)

    @staticmethod
    def _watchdog_usec(env: Mapping[str, str]) -> int:
        pid = env.get("WATCHDOG_PID")
        if pid and pid != str(os.getpid()):
            return 0                      # meant for another process
        try:
            return max(0, int(env.get("WATCHDOG_USEC", "0")))
        except ValueError:
            return 0

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    @property
    def watchdog_interval(self) -> float:
        """Seconds between WATCHDOG=1 pings; 0 when systemd asked for none."""
        return self.watchdog_usec / 1e6 * WATCHDOG_FRACTION

    def notify(self, *fields: str) -> bool:
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall("\n".join(fields).encode())
        except OSError:
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def reloading(self) -> bool:
        # systemd >= 253 wants MONOTONIC_USEC with RELOADING=1 (Type=notify-reload); older ones ignore it
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")
