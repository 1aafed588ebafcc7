"""The files a run writes for others to read: ``--ready-file`` while it is up, ``--summary-json`` at
its end. Each is claimed before the run (``claim_outputs``: only loggen's own files are replaced)."""

from __future__ import annotations

import os

from loggend.control.ctlsocket import ControlError, claim_path
from loggend.engine.journal import ERR, Log
from loggend.errors import UsageError
from loggend.files import claim, identity, write_json

SUMMARY_KEYS = frozenset({"target", "sent"})                 # a --summary-json file a run wrote has these
READY_KEYS = frozenset({"pid", "target", "started_unix"})    # ... a --ready-file


def claim_outputs(summary_path: str, ready_path: str, control_socket: str) -> None:
    """UsageError (before the run) unless --summary-json, --ready-file and a control socket path can
    be written without replacing anything but loggen's own: a summary, the ready file or the socket
    of a run that ended."""
    if control_socket not in ("auto", "off"):
        try:
            claim_path(control_socket)
        except ControlError as err:
            raise UsageError(str(err)) from None
    if summary_path:
        claim(summary_path, "--summary-json", lambda doc: isinstance(doc, dict) and SUMMARY_KEYS <= doc.keys(),
              "a summary loggen wrote")
    if ready_path:
        claim(ready_path, "--ready-file", _ended_run_ready_file, "the ready file of a run that ended")


def _ended_run_ready_file(doc: object) -> bool:
    if not isinstance(doc, dict) or not READY_KEYS <= doc.keys() or not isinstance(doc["pid"], int):
        return False
    return doc["pid"] > 0 and not os.path.exists(f"/proc/{doc['pid']}")


class RunFiles:
    def __init__(self, ready_path: str, summary_path: str, log: Log) -> None:
        self.ready_path, self.summary_path, self.log = ready_path, summary_path, log
        self.ready_written: tuple[int, int, int] | None = None   # files.identity of the ready file written

    def write_ready(self, doc: dict[str, object]) -> bool:
        if not self.write(self.ready_path, "ready file", doc):
            return False
        if self.ready_path:
            self.ready_written = identity(self.ready_path)
        return True

    def remove_ready(self) -> None:
        """A ready file says a run is up: none before it is (what is there was claimed at the start),
        none after it ended (ours only: not a file put in its place since)."""
        if not self.ready_path:
            return
        try:
            if not self.ready_written or identity(self.ready_path) == self.ready_written:
                os.unlink(self.ready_path)
        except OSError:
            pass

    def write_summary(self, doc: dict[str, object]) -> bool:
        return self.write(self.summary_path, "summary", doc)

    def write(self, path: str, what: str, doc: dict[str, object]) -> bool:
        """Whether ``doc`` is in ``path`` (or none was asked for); a failure is logged."""
        if not path:
            return True
        try:
            write_json(path, doc)
        except OSError as err:
            self.log(f"cannot write the {what} {path}: {err.strerror}", ERR)
            return False
        return True
