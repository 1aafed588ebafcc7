"""Files loggen writes for people and scripts: whole or not at all (a temporary file, then rename)."""

from __future__ import annotations

import json
import os
from typing import Any


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


def write_json(path: str, doc: Any) -> None:
    write_atomic(path, json.dumps(doc, indent=1) + "\n")
