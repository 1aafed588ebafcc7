"""Files loggen writes for people and scripts: whole or not at all (a temporary file, then rename)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from loggend.errors import UsageError


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through ``path.tmp`` and a rename: readers never see half a file.
    OSError (disk full, no permission) leaves ``path`` as it was."""
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_all_atomic(files: dict[str, str]) -> None:
    """Several files that belong together (a report and its page): every one written to its
    ``.tmp`` first, then all renamed. OSError before the renames leaves every file as it was."""
    done: list[str] = []
    try:
        for path, text in files.items():
            if os.path.isdir(path):
                raise IsADirectoryError(21, "Is a directory", path)
            tmp = f"{path}.tmp"
            done.append(tmp)
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
    except OSError:
        for tmp in done:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        raise
    for path in files:
        os.replace(f"{path}.tmp", path)


def write_json(path: str, doc: Any) -> None:
    write_atomic(path, json.dumps(doc, indent=1) + "\n")


def check_writable_dir(flag: str, directory: Path) -> None:
    """Before anything runs: ``directory`` exists (or is made) and takes a file, synced to the disk;
    else one line naming ``flag`` (exit 2): a read-only or full file system is found at the start,
    not at the end of a long run."""
    where = str(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"{flag}: {where!r} is not allowed; cannot create it: {err.strerror}") from None
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".probe-") as f:
            f.write(b"loggen")
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        raise UsageError(f"{flag}: {where!r} is not allowed; cannot write in it: {err.strerror}") from None
