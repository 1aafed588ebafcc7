import os
import socket

from loggend.control.systemd import Notifier


def listener(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(2)
    return sock


def test_without_notify_socket_everything_is_a_no_op():
    n = Notifier(env={})
    assert not n.enabled and n.watchdog_interval == 0
    assert n.ready() is False and n.watchdog() is False and n.stopping() is False


def test_messages_reach_a_path_socket(tmp_path):
    path = str(tmp_path / "notify")
    sock = listener(path)
    n = Notifier(env={"NOTIFY_SOCKET": path})
    assert n.ready("sending 4 workers")
    assert sock.recv(4096) == b"READY=1\nSTATUS=sending 4 workers"
    assert n.status("1,000,000 ev/s") and sock.recv(4096) == b"STATUS=1,000,000 ev/s"
    assert n.watchdog() and sock.recv(4096) == b"WATCHDOG=1"
    assert n.reloading() and sock.recv(4096).startswith(b"RELOADING=1\nMONOTONIC_USEC=")
    assert n.stopping() and sock.recv(4096) == b"STOPPING=1"
    sock.close()


def test_abstract_socket_names_start_with_at():
    name = f"loggend-test-{os.getpid()}"
    sock = listener("\0" + name)
    assert Notifier(env={"NOTIFY_SOCKET": "@" + name}).ready()
    assert sock.recv(4096) == b"READY=1"
    sock.close()


def test_a_vanished_socket_never_raises(tmp_path):
    assert Notifier(env={"NOTIFY_SOCKET": str(tmp_path / "gone")}).ready() is False


def test_watchdog_interval_is_half_the_period_and_only_for_this_pid():
    assert Notifier(env={"WATCHDOG_USEC": "10000000"}).watchdog_interval == 5.0
    assert Notifier(env={"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}).watchdog_interval == 5.0
    assert Notifier(env={"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"}).watchdog_interval == 0
    assert Notifier(env={"WATCHDOG_USEC": "soon"}).watchdog_interval == 0
