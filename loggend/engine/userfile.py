"""Files a user names for loggen to read (a config, a template file, a template's ``@FILE``),
read without letting them take the machine: regular files only (``/dev/zero`` would be read
until memory runs out, a FIFO would hang the start; ``/dev/null`` is read as empty), opened
non-blocking and checked with ``fstat`` on the open file, read up to a size cap.

Errors are ``ValueError`` saying what is wrong after the path (``is a FIFO; expected a regular
file``); the caller puts its own label in front.
"""

from __future__ import annotations

import os
import stat

MAX_USER_FILE_BYTES = 1 << 20      # a config file or a template's @FILE
FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
              (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_user_file(path: str, limit: int = MAX_USER_FILE_BYTES) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them; ValueError otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ValueError("no such file") from None
    except OSError as err:
        raise ValueError(f"cannot read: {err.strerror}") from None
    try:
        st = os.fstat(fd)
        mode = st.st_mode
        if stat.S_ISCHR(mode) and st.st_rdev == os.stat(os.devnull).st_rdev:
            return b""                            # /dev/null: the conventional empty file
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in FILE_KINDS if test(mode)), "not a regular file")
            raise ValueError(f"is {kind}; expected a regular file")
        try:
            data = os.read(fd, limit + 1)
        except OSError as err:
            raise ValueError(f"cannot read: {err.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ValueError(f"larger than {limit >> 10:,} KiB")
    return data
