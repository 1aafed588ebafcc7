"""Linux socket constants Python 3.11 does not export, and ctypes views of the batched calls
it does not wrap (sendmmsg(2), recvmmsg(2)): the one home of each, for senders and receivers."""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any

SOL_UDP = 17
UDP_SEGMENT = 103             # linux/udp.h: GSO segment size (sender)
UDP_GRO = 104                 # linux/udp.h: receive same-size datagrams of a flow as one buffer
SO_RCVBUFFORCE = 33           # asm-generic/socket.h: a receive buffer over rmem_max (root)
MSG_DONTWAIT = 0x40
MSG_TRUNC = 0x20


class Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class Msghdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p), ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.POINTER(Iovec)), ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p), ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", Msghdr), ("msg_len", ctypes.c_uint)]


def libc_function(name: str) -> Any | None:
    """A C library function with errno captured (``ctypes.get_errno()``), or None if absent."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        return getattr(libc, name)
    except (OSError, AttributeError):
        return None


def release_free_memory() -> None:
    """``malloc_trim(0)``: give the heap's free pages back to the kernel (they count in RSS)."""
    trim = libc_function("malloc_trim")
    if trim is not None:
        trim(0)
