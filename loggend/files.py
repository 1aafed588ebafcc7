"""Files loggen writes for people and scripts: whole or not at all (a temporary file, then rename).

A path loggen is told to write (``--summary-json``, ``--ready-file``) is claimed before the run
starts (``claim``): it must not exist, or be a regular file (not a link: links are never followed)
that is empty or that loggen wrote before (``ours`` says which); its directory must take a new file.
Anything else is refused in one line with exit 2, so a mistyped path never replaces or deletes
someone's data, and a read-only or missing directory is found before the run, not after it.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loggend.errors import UsageError

MAX_CLAIMED_BYTES = 16 << 20      # a file loggen wrote before is read this far to recognise it
FILE_MODE = 0o644                 # before the umask, as open(..., "w") makes files
TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
PROBE_SUFFIX = ".loggend-probe"
KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
         (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
         (stat.S_ISREG, "a regular file"))


def kind_of(mode: int) -> str:
    """``a directory``, ``a symbolic link``... of an ``lstat`` mode."""
    return next((name for test, name in KINDS if test(mode)), "an unknown kind of file")


def identity(path: str) -> tuple[int, int, int]:
    """What tells the file at ``path`` (never through a link) from one put there since: device,
    inode and change time (an inode number is reused at once by a new file)."""
    st = os.lstat(path)
    return st.st_dev, st.st_ino, st.st_ctime_ns


def read_own(path: str, limit: int = MAX_CLAIMED_BYTES) -> bytes | None:
    """The bytes of the regular file ``path`` (never through a link), or None when it is something
    else or larger than ``limit``; FileNotFoundError when there is nothing."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    return data if len(data) <= limit else None


def claim(path: str, label: str, ours: Callable[[Any], bool], what: str) -> None:
    """UsageError unless loggen may write ``path``: nothing there, or an empty regular file, or one
    whose JSON ``ours`` recognises (``what`` names it in the refusal); and the directory takes a file."""
    st = regular_or_none(path, label)
    if st is not None and st.st_size and not _is_ours(path, ours):
        raise UsageError(f"{label}: {path} exists and is not {what}; loggen would replace it: "
                         "remove it or choose another path")
    probe(path, label)


def regular_or_none(path: str, label: str) -> os.stat_result | None:
    """The ``lstat`` of ``path`` when it is a regular file, None when there is nothing; UsageError
    for anything else (a link, a directory, a device...)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise UsageError(f"{label}: {path}: {err.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{label}: {path} is {kind_of(st.st_mode)}; expected a new or a regular file "
                         "(loggen never follows links)")
    return st


def _is_ours(path: str, ours: Callable[[Any], bool]) -> bool:
    try:
        data = read_own(path)
        return data is not None and ours(json.loads(data))
    except (OSError, ValueError, RecursionError):
        return False


def probe(path: str, label: str) -> None:
    """UsageError unless a file can be created beside ``path`` (a read-only file system, a directory
    that is missing or closed to us): created and removed at once."""
    test = path + PROBE_SUFFIX
    try:
        os.close(os.open(test, TMP_FLAGS, FILE_MODE))
        os.unlink(test)
    except OSError as err:
        raise UsageError(f"{label}: cannot write {path}: {err.strerror}") from None


def _write_tmp(path: str, text: str) -> str:
    """``text`` in ``path.tmp``, created new (a link or a file left there is removed, never followed)
    and synced; the temporary file's path."""
    tmp = f"{path}.tmp"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, TMP_FLAGS, FILE_MODE)
    try:
        with open(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        _remove(tmp)
        raise
    return tmp


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through ``path.tmp`` and a rename: readers never see half a file.
    OSError (disk full, no permission) leaves ``path`` as it was."""
    tmp = _write_tmp(path, text)
    try:
        os.replace(tmp, path)
    except OSError:
        _remove(tmp)
        raise


def write_all_atomic(files: dict[str, str]) -> None:
    """Several files that belong together (a report and its page): every one written to its
    ``.tmp`` first, then all renamed. OSError before the renames leaves every file as it was."""
    done: list[str] = []
    try:
        for path, text in files.items():
            if os.path.isdir(path):
                raise IsADirectoryError(21, "Is a directory", path)
            done.append(_write_tmp(path, text))
    except OSError:
        for tmp in done:
            _remove(tmp)
        raise
    for path, tmp in zip(files, done):
        os.replace(tmp, path)


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
