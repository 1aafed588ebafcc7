"""The bench's C sender of a pool's own frames (``loggend/tools/framesend.c``): built beside the
yardstick, it sends exactly the datagrams of a worker's pool of the mix, in the pool's order (skipped
where the yardstick or a C compiler is missing)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

from tests.support.processes import ROOT

YARDSTICK = ROOT.parent / "shared" / "yardstick"
why = ("no yardstick at ../shared/yardstick" if not (YARDSTICK / "udp_gso_blast.c").exists()
       else "no C compiler" if not (shutil.which("cc") and shutil.which("make")) else "")
FIRST = 150         # datagrams compared in order: the start of the pool fits in an empty receive queue


@pytest.mark.skipif(bool(why), reason=why or "-")
def test_the_c_frame_sender_sends_the_pools_own_datagrams_in_order() -> None:
    from loggend.content import mix
    from loggend.engine.render import GSO_MAX_SEGMENTS, build_pool
    from loggend.engine.spec import MessageSpec
    from loggend.tools.bench import Yardstick
    from loggend.tools.bench_sources import mix_sources

    spec = MessageSpec(sources=mix_sources(), pool_size=1000, max_length=mix.MAX_LENGTH)
    now = time.time()
    pool = build_pool(spec, 0, "w0", now, mix.corpus(spec, now, 1000), GSO_MAX_SEGMENTS)
    sent = [bytes(pool.buf[start + j * length:start + (j + 1) * length])
            for start, count, length in zip(pool.starts, pool.counts, pool.lengths) for j in range(count)]
    ys = Yardstick(str(YARDSTICK))
    try:
        assert ys.build_frames(pool) == ""
        assert f"{round(pool.size / pool.frames)} a frame" in ys.frames_name
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        port = receiver.getsockname()[1]
        sender = subprocess.Popen([str(ys.dir / "framesend"), *ys.frames_args, "-p", str(port), "-d", "0.2"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        got = [receiver.recv(65536) for _ in range(2000)]
        out, _ = sender.communicate(timeout=10)
        receiver.close()
    finally:
        ys.close()
    assert got[:FIRST] == sent[:FIRST]
    assert set(got) <= set(sent)                            # nothing but the pool's own datagrams
    assert "RESULT sent=" in out and " stime=" in out
