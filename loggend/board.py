"""The run board: a small JSON document the supervisor publishes for the web process.

The counters say what the workers did; the board says what the run *is*: the config in force
(it changes on reload), when it started, the memory the supervisor measured. It is a shared
anonymous mmap created before the children fork, written only by the supervisor and read by
the web process, with a sequence lock instead of a mutex::

    offset 0   u64 generation   odd while a write is in progress
    offset 8   u64 length       bytes of JSON that follow
    offset 16  JSON, UTF-8      at most BOARD_BYTES - 16

A reader copies the document and retries when the generation was odd or changed meanwhile.
"""

from __future__ import annotations

import json
import mmap
import struct
import time
from typing import Any

BOARD_BYTES = 64 << 10
HEADER = struct.Struct("<QQ")
READ_RETRIES = 100


class Board:
    def __init__(self, size: int = BOARD_BYTES) -> None:
        self.size = size
        self._map = mmap.mmap(-1, size)
        self.publish({})

    def publish(self, document: dict[str, Any]) -> None:
        data = json.dumps(document, separators=(",", ":")).encode()
        if len(data) > self.size - HEADER.size:
            raise ValueError(f"board document of {len(data)} bytes does not fit in {self.size}")
        generation, _ = HEADER.unpack_from(self._map, 0)
        HEADER.pack_into(self._map, 0, generation + 1, 0)                  # odd: being written
        self._map[HEADER.size:HEADER.size + len(data)] = data
        HEADER.pack_into(self._map, 0, generation + 2, len(data))          # even: complete

    def read(self) -> dict[str, Any]:
        for _ in range(READ_RETRIES):
            generation, length = HEADER.unpack_from(self._map, 0)
            data = self._map[HEADER.size:HEADER.size + length]
            again, _ = HEADER.unpack_from(self._map, 0)
            if generation % 2 == 0 and again == generation:
                result: dict[str, Any] = json.loads(data) if data else {}
                return result
            time.sleep(0.0001)
        return {}
