"""Detection latency through a private fail2ban, as docs/detection.md reports it.

    .venv/bin/python scripts/fail2ban-latency.py [RATE] [DURATION]

loggen (the catalogue at RATE ev/s, ``ssh-bruteforce:attempts=10,within=10`` every 12 s) -> a private
rsyslog writing auth.log -> a private fail2ban-server (its own sshd filter, 5 failures) -> its Ban line
-> ``--detect command:`` -> the latency of each instance. Everything on 127.0.0.1, in a temporary
directory; needs rsyslog and fail2ban unpacked by scripts/system-deps.sh.
"""

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import RUN, run_loggend  # noqa: E402
from tests.support import detectors as D  # noqa: E402


def main(rate: str = "1000", duration: str = "40") -> int:
    tmp = Path(tempfile.mkdtemp(prefix="loggen-f2b-latency-"))
    with D.auth_log_receiver(tmp / "rsyslog", udp=True, tcp=False) as rx:       # type: ignore[attr-defined]
        with D.Fail2banServer(tmp / "fail2ban", rx.auth_log, maxretry=5) as f2b:
            r = run_loggend(*RUN, "--target", f"127.0.0.1:{rx.ports['udp']}", "--rate", rate, "--duration",
                            duration, "--pool-size", "1000",
                            "--scenario", "ssh-bruteforce:attempts=10,within=10,at=2,every=12",
                            "--detect", f"command:{sys.executable} {D.__file__} {f2b.server_log}",
                            "--detect-timeout", "10", "--summary-json", str(tmp / "summary.json"), timeout=600)
    if r.returncode:
        print(r.stderr[-2000:])
        return r.returncode
    doc = json.loads((tmp / "summary.json").read_text())
    print(f"sent {doc['sent']:,} events at {doc['rate']:,.0f} ev/s")
    for v in doc["detection"]["instances"]:
        print(f"{v['id']}: {v['state']}" + (f" after {v['latency_seconds']:.2f} s" if v["latency_seconds"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
