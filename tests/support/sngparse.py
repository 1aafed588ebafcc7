"""Run the unpacked syslog-ng privately over a list of messages and return what a parser extracted.

One syslog-ng start per call, no network: the messages go in on ``stdin()`` (syslog-ng stops at
its end), each through the named parser (a config snippet such as ``cisco-parser()`` or
``app-parser(topic(syslog-raw))``, from the scl of the unpack: Debian's syslog-ng-scl), and every
message's name-value pairs come back as one dict, in input order, with ``OK_KEY`` set to "1" when
the parser accepted it and "0" when it failed or dropped it.

The source flags decide what the parser sees, as a network source would hand it over:
``no-parse`` (the default) keeps the whole line in MESSAGE, as the ``syslog-raw`` applications of
default-network-drivers() (cisco, fortigate, checkpoint) get it; ``syslog-protocol`` parses RFC 5424
first (SDATA into ``.SDATA.*``), as ``syslog()`` does; ``""`` parses RFC 3164, as ``network()`` does.

    rows = parse(lines, "cisco-parser()")
    assert all(r[OK_KEY] == "1" for r in rows)
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from tests.support.receivers import SyslogNgInstall, find_syslog_ng, syslog_ng_available

OK_KEY = "SNGPARSE_OK"
DEFAULT_TIMEOUT = 120.0
SCL_CHECK = "usr/share/syslog-ng/include/scl/cisco/plugin.conf"    # present once syslog-ng-scl is unpacked
MACROS = ("HOST", "PROGRAM", "PID", "MSGID", "MESSAGE", "FACILITY", "SEVERITY", "LEGACY_MSGHDR")
KEY_DELIMITER = "~"                 # never in a name: keeps '.cisco.severity' one flat key

CONF = """\
@version: 3.38
@define include-path "{include_path}"
@include "scl.conf"
options {{ stats-freq(0); keep-hostname(yes); keep-timestamp(yes); log-msg-size(65536); }};
source s_in {{ stdin(flags({flags}) log-iw-size(1000000)); }};
destination d_out {{ file("{out}" template("{template}\\n") log-fifo-size(1000000)); }};
log {{
  source(s_in);
  {steps}
  destination(d_out);
  flags(flow-control);
}};
"""


# What default-network-drivers() does with a message on its port 514 (scl/default-network-drivers):
# the syslog-raw applications first (cisco, fortigate, checkpoint...), then the RFC 5424 parser
# (falling back to RFC 3164) and the syslog applications (panos, junos, iptables...). Feed it raw
# lines (flags "no-parse"); ``.app.name`` says which application took a message.
DEFAULT_NETWORK_DRIVERS = """if { parser { app-parser(topic(syslog-raw)); }; }
  else {
    parser { syslog-parser(flags(syslog-protocol)); };
    if { parser { ewmm-parser(); }; } elif { parser { app-parser(topic(syslog)); }; } else {};
  };"""


class SngParseError(RuntimeError):
    pass


def unavailable(install: SyslogNgInstall | None = None) -> str | None:
    """None when syslog-ng and its scl are unpacked; otherwise why not (a skip reason)."""
    reason = syslog_ng_available(str(install.root) if install else None)
    if reason:
        return reason
    inst = install or find_syslog_ng()
    assert inst is not None
    if not (inst.root / SCL_CHECK).exists():
        return f"syslog-ng scl missing in {inst.root} (Debian's syslog-ng-scl: run scripts/system-deps.sh)"
    return None


def _template() -> str:
    keys = " ".join(f"--key {m}" for m in MACROS)
    return f"$(format-json --key-delimiter {KEY_DELIMITER} --scope all-nv-pairs {keys})"


def config(parser: str | None, out: Path, install: SyslogNgInstall, flags: str = "no-parse",
           path: str | None = None) -> str:
    """The private configuration: ``parser`` is a parser expression (or None: the source alone);
    ``path``, instead, log-path elements used as they are (e.g. ``DEFAULT_NETWORK_DRIVERS``)."""
    include = f"{install.root / 'etc/syslog-ng'}:{install.root / 'usr/share/syslog-ng/include'}"
    accept = f'rewrite {{ set("1" value("{OK_KEY}")); }};'
    if path:                       # elements that pass every message on (an else {} of their own)
        steps = f"{path}\n  {accept}"
    else:
        body = f"parser {{ {parser}; }};" if parser else ""
        steps = f'if {{ {body} {accept} }}\n  else {{ rewrite {{ set("0" value("{OK_KEY}")); }}; }};'
    return CONF.format(include_path=include, flags=flags or "", out=out, template=_template().replace('"', '\\"'),
                       steps=steps)


def _payload(messages: Iterable[str | bytes]) -> tuple[bytes, int]:
    lines = [m.encode() if isinstance(m, str) else m for m in messages]
    for i, line in enumerate(lines):
        if b"\n" in line:
            raise ValueError(f"message {i} holds a newline; one message per line")
    return b"".join(line + b"\n" for line in lines), len(lines)


def parse(messages: Iterable[str | bytes], parser: str | None, *, flags: str = "no-parse",
          install: SyslogNgInstall | None = None, timeout: float = DEFAULT_TIMEOUT,
          path: str | None = None) -> list[dict[str, str]]:
    """Every message through ``parser`` (or the log-path elements ``path``); its name-value pairs in
    input order (``OK_KEY`` says accepted)."""
    inst = install or find_syslog_ng()
    reason = unavailable(inst)
    if reason or inst is None:
        raise SngParseError(reason or "syslog-ng not found")
    payload, count = _payload(messages)
    with tempfile.TemporaryDirectory(prefix="sngparse-") as tmp:
        work = Path(tmp)
        out = work / "out.json"
        conf = work / "syslog-ng.conf"
        conf.write_text(config(parser, out, inst, flags, path))
        cmd = [str(inst.binary), "-F", f"--module-path={inst.module_path}", "-f", str(conf),
               f"--persist-file={work / 'persist'}", f"--pidfile={work / 'pid'}",
               f"--control={work / 'ctl'}"]
        r = subprocess.run(cmd, input=payload, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=inst.env(), timeout=timeout)
        if r.returncode != 0 or not out.exists():
            raise SngParseError(f"syslog-ng exited {r.returncode}:\n{r.stdout.decode(errors='replace')[-2000:]}")
        rows = [json.loads(line) for line in out.read_text(errors="replace").splitlines() if line]
    if len(rows) != count:
        raise SngParseError(f"syslog-ng wrote {len(rows)} messages for {count} sent")
    return rows


def recognised(rows: list[dict[str, str]], key: str | None = None) -> float:
    """The share of rows the parser accepted (and, with ``key``, that carry a non-empty ``key``)."""
    if not rows:
        return 0.0
    good = sum(1 for r in rows if r.get(OK_KEY) == "1" and (key is None or r.get(key)))
    return good / len(rows)
