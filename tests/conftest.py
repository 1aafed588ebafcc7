"""Fixtures every test may ask for; the helpers themselves live in tests/support."""

from __future__ import annotations

import os
import socket

import pytest
from hypothesis import settings as _hypothesis_settings

from tests.support.processes import Loggend, LoopbackReceiver
from tests.support.receivers import make_pki, openssl_available

_getaddrinfo = socket.getaddrinfo
NAMES_ON_THE_BOX = ("localhost", "localhost.", "ip6-localhost", "ip6-loopback")


def _getaddrinfo_on_the_box(host, *args, **kwargs):
    """``socket.getaddrinfo`` for addresses and the loopback's names only: a test never asks a DNS server
    (this box's is off it) about a name, as a fuzzed target would. Other names are not found."""
    name = host.decode() if isinstance(host, bytes) else host
    if name is None or name in NAMES_ON_THE_BOX:
        return _getaddrinfo(host, *args, **kwargs)
    try:
        _getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError, TypeError):
        raise socket.gaierror(socket.EAI_NONAME, f"{name!r}: tests look up no name off the box") from None
    return _getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def no_dns_off_the_box(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", _getaddrinfo_on_the_box)


@pytest.fixture
def receiver():
    r = LoopbackReceiver()
    yield r
    r.close()


@pytest.fixture
def loggend():
    """Start loggend processes; every one's process group is killed in teardown."""
    started: list[Loggend] = []

    def start(*args: str, env: dict[str, str | None] | None = None) -> Loggend:
        p = Loggend(*args, env=env)
        started.append(p)
        return p

    yield start
    for p in started:
        if p.proc.poll() is None:
            p.kill()


@pytest.fixture
def receivers():
    """Factory of loopback receivers, all closed in teardown."""
    made: list[LoopbackReceiver] = []

    def make(count: int) -> list[LoopbackReceiver]:
        new = [LoopbackReceiver() for _ in range(count)]
        made.extend(new)
        return new

    yield make
    for r in made:
        r.close()


def pytest_collection_modifyitems(config, items) -> None:
    """Every integration test runs real processes on real loopback sockets: mark it ``network``."""
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.network)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """A throw-away CA with a server certificate (localhost, 127.0.0.1) and a client one; skips without openssl."""
    reason = openssl_available()
    if reason:
        pytest.skip(reason)
    return make_pki(tmp_path_factory.mktemp("pki"))


# Property tests (hypothesis): a hundred examples each in `make test` (hypothesis's default); `make fuzz` sets
# HYPOTHESIS_PROFILE=fuzz for thousands. No deadline: a loaded 2-core box is slow, not wrong.
_hypothesis_settings.register_profile("ci", max_examples=100, deadline=None)
_hypothesis_settings.register_profile("fuzz", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "20000")), deadline=None)
_hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
