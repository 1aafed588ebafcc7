"""A throw-away PKI for local TLS runs: a CA, a server certificate for the target, a client one.

``loggend run --protocol tls --local-sink`` and ``loggend perftest --protocol tls`` need a
server certificate the workers can verify; when none is configured one is made here with the
``openssl`` command (EC P-256, valid for two days, SAN = the target's address and
``localhost``) in a private directory of the run, and the workers trust its CA. Tests make
theirs the same way.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

DAYS = 2
NEWKEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]


class PkiError(Exception):
    """The openssl command is missing or failed."""


@dataclass(frozen=True)
class Pki:
    dir: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(args: list[str], cwd: Path) -> None:
    try:
        r = subprocess.run(["openssl", *args], cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60, check=False)
    except FileNotFoundError:
        raise PkiError("the openssl command is needed to make a throw-away certificate "
                       "(apt-get install openssl), or give sink_tls_cert and sink_tls_key") from None
    if r.returncode:
        last = (r.stdout.decode(errors="replace").strip().splitlines() or ["?"])[-1]
        raise PkiError(f"openssl {args[0]} failed: {last}")


def _san(names: tuple[str, ...]) -> str:
    out = []
    for name in names:
        try:
            ipaddress.ip_address(name)
            out.append(f"IP:{name}")
        except ValueError:
            out.append(f"DNS:{name}")
    return ",".join(out)


def make_pki(directory: str | os.PathLike[str], server_names: tuple[str, ...] = ("localhost", "127.0.0.1"),
             client_name: str = "loggen-client", days: int = DAYS) -> Pki:
    """CA, server certificate (SAN: ``server_names``) and client certificate, all signed by the CA."""
    if shutil.which("openssl") is None:
        _openssl(["version"], Path("."))                  # raises the one-line PkiError
    d = Path(directory).resolve()
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    _openssl(["req", "-x509", *NEWKEY, "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", str(days),
              "-subj", "/CN=loggen throw-away CA", "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)
    (d / "server.ext").write_text(f"subjectAltName={_san(server_names)}\nbasicConstraints=CA:FALSE\n"
                                  "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text(f"subjectAltName=DNS:{client_name}\nbasicConstraints=CA:FALSE\n"
                                  "keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n")
    for name, cn in (("server", server_names[0]), ("client", client_name)):
        _openssl(["req", *NEWKEY, "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}"], d)
        _openssl(["x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                  "-out", f"{name}.pem", "-days", str(days), "-extfile", f"{name}.ext"], d)
    for key in ("ca.key", "server.key", "client.key"):
        os.chmod(d / key, 0o600)
    return Pki(d, d / "ca.pem", d / "ca.key", d / "server.pem", d / "server.key", d / "client.pem", d / "client.key")
