"""Kernel network tuning for high UDP rates: apply with saved state, restore exactly, show.

``apply`` first checks that every sysctl can be written (else: one line, nothing changed), then
saves the current values to a state file, then writes the documented ones. ``restore`` writes
back exactly what was saved and removes the state file. A second ``apply`` keeps the first saved
state, so ``restore`` always returns to what was there before loggen touched anything. The
sysctl root and the state path are parameters (test seams).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from loggend.engine.journal import WARNING, Log

SYSCTL_ROOT = "/proc/sys"
STATE_PATH = "/var/lib/loggen/tuning.json"
UNIT_HINT = ("; a systemd service may not write /proc/sys (ProtectKernelTunables=yes in loggen.service): "
             "run `sudo loggend tune apply` once outside it (`loggend tune restore` undoes it)")

# What `apply` sets, and why.
TUNING: dict[str, str] = {
    "net.core.wmem_max": "268435456",          # 256 MiB: lets each worker ask for a deep send buffer
    "net.core.rmem_max": "268435456",          # 256 MiB: lets a sink (or SIEM) ask for a deep receive queue
    "net.core.wmem_default": "4194304",        # 4 MiB for sockets that do not ask
    "net.core.rmem_default": "33554432",       # 32 MiB for receivers that do not ask (most SIEM inputs)
    "net.core.netdev_max_backlog": "250000",   # packets queued per CPU before the stack drops them
    "net.ipv4.ip_local_port_range": "1024 65535",   # source ports for many sockets
}


class TuningError(Exception):
    """Tuning cannot be applied or restored here (permissions, a missing sysctl, a bad state file)."""


@dataclass(frozen=True)
class Tuner:
    root: str = SYSCTL_ROOT
    state: str = STATE_PATH

    def path(self, key: str) -> str:
        return os.path.join(self.root, *key.split("."))

    def read(self, key: str) -> str:
        with open(self.path(key), encoding="ascii") as f:
            return " ".join(f.read().split())

    def write(self, key: str, value: str) -> None:
        with open(self.path(key), "w", encoding="ascii") as f:
            f.write(value + "\n")

    def check_writable(self, keys: list[str]) -> None:
        for key in keys:
            path = self.path(key)
            if not os.path.exists(path):
                raise TuningError(f"{key}: no such sysctl ({path})")
            if not os.access(path, os.W_OK):
                raise TuningError(f"{key}: cannot write {path} (needs root, and a writable /proc/sys); "
                                  "nothing was changed")
            try:
                with open(path, "r+", encoding="ascii"):
                    pass
            except OSError as err:
                raise TuningError(f"{key}: cannot write {path}: {err.strerror}; nothing was changed") from None

    def saved(self) -> dict[str, str] | None:
        try:
            with open(self.state, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, RecursionError) as err:
            raise TuningError(f"{self.state}: unreadable tuning state: {type(err).__name__}") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise TuningError(f"{self.state}: not a tuning state file")
        return data

    def apply(self) -> list[tuple[str, str, str]]:
        """Set TUNING; returns (key, before, after) for what changed."""
        keys = list(TUNING)
        self.check_writable(keys)
        current = {key: self.read(key) for key in keys}
        if self.saved() is None:
            os.makedirs(os.path.dirname(self.state) or ".", exist_ok=True)
            tmp = self.state + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(current, f, indent=1)
            os.replace(tmp, self.state)
        changed = []
        for key, value in TUNING.items():
            if current[key] != value:
                self.write(key, value)
                changed.append((key, current[key], self.read(key)))
        return changed

    def restore(self) -> list[tuple[str, str, str]]:
        """Put back what ``apply`` saved; [] when there is nothing saved."""
        saved = self.saved()
        if saved is None:
            return []
        self.check_writable(list(saved))
        changed = []
        for key, value in saved.items():
            before = self.read(key)
            if before != value:
                self.write(key, value)
                changed.append((key, before, self.read(key)))
        os.remove(self.state)
        return changed

    def show(self) -> list[tuple[str, str, str, str]]:
        """(key, current, loggen's value, saved value or "")."""
        saved = self.saved() or {}
        rows = []
        for key, value in TUNING.items():
            try:
                current = self.read(key)
            except OSError:
                current = "?"
            rows.append((key, current, value, saved.get(key, "")))
        return rows


class RunTuning:
    """``optimize: true`` for one run: apply when allowed (saying what changed), restore at the end.

    A tuning already applied by ``loggend tune apply`` is left alone and not restored away. Under
    systemd the unit cannot write /proc/sys (``ProtectKernelTunables=yes``, no capabilities): the
    warning then says how to apply it once, as root, outside the unit.
    """

    def __init__(self, log: Log, state: str = STATE_PATH, under_systemd: bool = False) -> None:
        self.log = log
        self.state = state
        self.under_systemd = under_systemd
        self.tuner: Tuner | None = None

    def apply(self) -> None:
        tuner = Tuner(state=self.state)
        try:
            if tuner.saved() is not None:
                self.log(f"optimize: tuning already applied by `loggend tune apply` ({tuner.state}); left as it is")
                return
            changed = tuner.apply()
        except TuningError as err:
            hint = (UNIT_HINT if self.under_systemd else "")
            self.log(f"optimize: not applied: {err}{hint}", WARNING)
            return
        self.tuner = tuner
        done = ", ".join(f"{k} {a} -> {b}" for k, a, b in changed) or "already in place"
        self.log(f"optimize: kernel tuning applied ({done}); restored when the run ends")

    def restore(self) -> None:
        if self.tuner is None:
            return
        try:
            changed = self.tuner.restore()
            self.log(f"optimize: kernel tuning restored ({len(changed)} values)")
        except TuningError as err:
            self.log(f"optimize: could not restore: {err}; run `loggend tune restore`", WARNING)
        self.tuner = None
