"""The bench's C sender of the mix's geometry: built from the yardstick's own sender with a field
padded into its line, it sends lines of the asked-for length (skipped where the yardstick is missing)."""

from __future__ import annotations

import shutil
import socket
import subprocess

import pytest

from tests.support.processes import ROOT

YARDSTICK = ROOT.parent / "shared" / "yardstick"
why = ("no yardstick at ../shared/yardstick" if not (YARDSTICK / "udp_gso_blast.c").exists()
       else "no C compiler" if not (shutil.which("cc") and shutil.which("make")) else "")


@pytest.mark.skipif(bool(why), reason=why or "-")
def test_the_padded_c_sender_sends_lines_of_the_mix_length() -> None:
    from loggend.tools.bench import Yardstick
    ys = Yardstick(str(YARDSTICK))
    try:
        assert ys.build_long(509, 27, 1000) == ""
        assert "509 B, 27 a frame" in ys.long_name
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        port = receiver.getsockname()[1]
        sender = subprocess.Popen([str(ys.dir / "udp_gso_blast_long"), "-p", str(port), "-d", "0.2", "-c",
                                   *ys.long_args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        lengths = [len(receiver.recv(4096)) for _ in range(2000)]
        sender.communicate(timeout=10)
        receiver.close()
    finally:
        ys.close()
    assert 505 <= sum(lengths) / len(lengths) <= 513 and min(lengths) > 500, (min(lengths), max(lengths))
