"""The arbiter: forks the workers, watches them, turns signals into actions, reports.

Signal handlers only enqueue the signal; the main loop drains the queue and dispatches to
``handle_<name>()``. Workers write their counter slots; this process only reads them (and owns
each slot's RESTARTS field).
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import TextIO

from loggend.config import Config
from loggend.engine import counters as C
from loggend.engine.counters import CounterBlock
from loggend.engine.worker import EXIT_BOOT_FAILED, Worker
from loggend.errors import EXIT_FAILURE, EXIT_OK
from loggend.report import LiveLine, summary
from loggend.systemd import Notifier

LOOP_SECONDS = 0.1           # main loop period: signal latency and reaping
REPORT_SECONDS = 1.0         # live line period
GRACEFUL_TIMEOUT = 5.0       # SIGTERM -> SIGKILL for workers that do not stop
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Supervisor:
    def __init__(
        self,
        config: Config,
        out: TextIO = sys.stdout,
        clock: Callable[[], float] = time.monotonic,
        notifier: Notifier | None = None,
    ) -> None:
        self.config = config
        self.notifier = notifier or Notifier()
        self.out = out
        self.clock = clock
        self.block = CounterBlock(1)
        self.workers: dict[int, int] = {}        # pid -> worker index
        self.signals: list[int] = []
        self.stopping = False
        self.exit_code = EXIT_OK

    # --- signals -------------------------------------------------------------------------------------

    def install_signals(self) -> None:
        for sig in HANDLED_SIGNALS:
            signal.signal(sig, self._enqueue)

    def _enqueue(self, signum: int, frame: object) -> None:
        self.signals.append(signum)

    def dispatch_signals(self) -> None:
        while self.signals:
            name = signal.Signals(self.signals.pop(0)).name.lower()
            getattr(self, f"handle_{name}")()

    def handle_sigint(self) -> None:
        self.stop()

    def handle_sigterm(self) -> None:
        self.stop()

    # --- workers -------------------------------------------------------------------------------------

    def spawn_worker(self, index: int) -> None:
        worker = Worker(self.config.worker_spec(index), self.block.slot(index))
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            self.workers[pid] = index
            return
        code = EXIT_FAILURE
        try:
            for sig in HANDLED_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            worker.init_process()
            code = worker.run()
        except BaseException:       # a child must never return into the parent's code
            traceback.print_exc()
        finally:
            os._exit(code)

    def reap_workers(self) -> None:
        while self.workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.workers.clear()
                return
            if pid == 0:
                return
            index = self.workers.pop(pid, None)
            if index is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            if code == EXIT_BOOT_FAILED:
                self.exit_code = EXIT_FAILURE
            elif code != 0 and not self.stopping:
                print(f"loggend: worker {index} exited with status {code}", file=sys.stderr)
                self.exit_code = EXIT_FAILURE

    def stop(self) -> None:
        """SIGTERM every worker, wait up to GRACEFUL_TIMEOUT, then SIGKILL the rest."""
        self.stopping = True
        self.notifier.stopping()
        for pid in list(self.workers):
            self._kill(pid, signal.SIGTERM)
        deadline = self.clock() + GRACEFUL_TIMEOUT
        while self.workers and self.clock() < deadline:
            self.reap_workers()
            time.sleep(0.01)
        for pid in list(self.workers):
            self._kill(pid, signal.SIGKILL)
        while self.workers:
            self.reap_workers()
            time.sleep(0.01)

    def all_running(self) -> bool:
        return all(s.state == C.STATE_RUNNING for s in self.block.snapshots())

    @staticmethod
    def _kill(pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    # --- main loop ----------------------------------------------------------------------------------

    def run(self) -> int:
        self.install_signals()
        started = self.clock()
        self.spawn_worker(0)
        live = LiveLine(self.block, started)
        next_report = started + REPORT_SECONDS
        next_ping = started
        ready = False
        while self.workers:
            self.dispatch_signals()
            self.reap_workers()
            now = self.clock()
            if not ready and self.all_running():
                self.notifier.ready(f"sending to {self.config.host}:{self.config.port}")
                ready = True
            if now >= next_report and not self.stopping:
                line = live.line(now)
                print(line, file=self.out, flush=True)
                self.notifier.status(line.strip())
                next_report += REPORT_SECONDS
            if self.notifier.watchdog_interval and now >= next_ping:
                self.notifier.watchdog()
                next_ping = now + self.notifier.watchdog_interval
            time.sleep(LOOP_SECONDS)
        elapsed = self.clock() - started
        snapshots = self.block.snapshots()
        if any(s.state == C.STATE_FAILED for s in snapshots):
            self.exit_code = EXIT_FAILURE
        else:
            print(summary(snapshots, elapsed, self.config), file=self.out, flush=True)
        return self.exit_code
