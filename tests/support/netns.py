"""A private network namespace where the kernel itself loses or slows packets.

Nothing leaves it: the namespace has only its own loopback, brought up here. Loss is an nftables
rule ``numgen random mod 1000 < N counter drop`` on the ports under test (exact: its counter says how
many packets the kernel dropped); a slow link is a ``tc tbf`` qdisc on the namespace's loopback.
netem (delay, reordering, duplication) is used where the kernel has it (``has_netem``).
Everything here needs root, ``ip``, ``nft`` and ``tc``; ``missing()`` says what is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Sequence

COMMAND_TIMEOUT = 20
LINK_MTU = 1500                  # a rate-limited loopback's MTU (Ethernet's)


def missing() -> str:
    """Why these tests cannot run here ('' when they can)."""
    if os.geteuid() != 0:
        return "network namespaces and nftables need root"
    absent = [tool for tool in ("ip", "nft", "tc") if shutil.which(tool) is None]
    if absent:
        return f"{', '.join(absent)} not installed (Debian: iproute2, nftables)"
    return ""


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=check,
                          stdin=subprocess.DEVNULL)


class Netns:
    """``ip netns add`` with its loopback up; ``close()`` deletes it (and whatever rules it had)."""

    def __init__(self) -> None:
        self.name = f"lgtest-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        _run("ip", "netns", "add", self.name)
        try:
            self.sh("ip", "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise

    def prefix(self) -> list[str]:
        """The command prefix that runs a program inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def sh(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(*self.prefix(), *args, check=check)

    def drop_random(self, ports: Sequence[int], per_mille: int, protocol: str = "udp") -> None:
        """Drop ``per_mille``/1000 of the packets to ``ports`` at random, with a counter."""
        port_set = "{ " + ", ".join(str(p) for p in ports) + " }"
        self.sh("nft", "add", "table", "inet", "loggen_test")
        self.sh("nft", "add", "chain", "inet", "loggen_test", "input",
                "{ type filter hook input priority 0; policy accept; }")
        self.sh("nft", "add", "rule", "inet", "loggen_test", "input", protocol, "dport", port_set,
                "numgen", "random", "mod", "1000", "<", str(per_mille), "counter", "drop")

    def dropped(self) -> tuple[int, int]:
        """(packets, bytes) the drop rule's counter holds."""
        doc = json.loads(self.sh("nft", "-j", "list", "table", "inet", "loggen_test").stdout)
        for item in doc["nftables"]:
            rule = item.get("rule")
            if not rule:
                continue
            for expr in rule["expr"]:
                if "counter" in expr:
                    return int(expr["counter"]["packets"]), int(expr["counter"]["bytes"])
        raise AssertionError("no counter in the drop rule")

    def rate_limit(self, rate: str, burst: str = "32kbit", latency: str = "50ms") -> None:
        """A token-bucket link on the namespace's loopback (both directions share it). Loopback's MTU
        becomes Ethernet's: tbf never passes a packet larger than its burst, and TCP on a 64 KiB MTU
        sends packets of up to 64 KiB."""
        self.sh("ip", "link", "set", "lo", "mtu", str(LINK_MTU))
        self.sh("tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", rate, "burst", burst, "latency", latency)

    def has_netem(self) -> bool:
        probe = self.sh("tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms", check=False)
        if probe.returncode == 0:
            self.sh("tc", "qdisc", "del", "dev", "lo", "root")
            return True
        return False

    def close(self) -> None:
        _run("ip", "netns", "del", self.name, check=False)

    def __enter__(self) -> Netns:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
