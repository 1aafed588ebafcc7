"""The control socket in one process: one request per connection, answered from a select loop that
never waits for a slow client; where ``auto`` puts it; stale and live sockets."""

import select
import socket
import threading

import pytest

from loggend.control.ctlsocket import CLIENT_TIMEOUT, ControlError, ControlServer, find_socket, request, runtime_dir


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def serve(server: ControlServer, rounds: int, wait: float = 0.05, until=None) -> None:
    """Run the server's part of a select loop (``until`` ends it early)."""
    for _ in range(rounds):
        ready, _, _ = select.select(server.fds(), [], [], wait)
        server.service(set(ready))
        if until is not None and until():
            return


@pytest.fixture
def server(tmp_path):
    log: list[str] = []
    clock = FakeClock()
    seen = []

    def handler(line, peer):
        seen.append((line, peer.uid))
        return {"ok": True, "message": f"did {line}"}
    s = ControlServer(str(tmp_path / "c.sock"), handler, lambda line, level=6: log.append(line), clock)
    s.open()
    s.log_lines, s.fake_clock, s.seen = log, clock, seen
    yield s
    s.close()


def ask(path: str, line: str, out: list) -> threading.Thread:
    t = threading.Thread(target=lambda: out.append(request(path, line, timeout=5)))
    t.start()
    return t


def test_one_line_in_one_json_line_out(server, tmp_path):
    assert oct((tmp_path / "c.sock").stat().st_mode & 0o777) == "0o600"
    got: list = []
    t = ask(server.path, "rate 250k", got)
    serve(server, 100, until=lambda: got)
    t.join(5)
    assert got == [{"ok": True, "message": "did rate 250k"}] and server.seen == [("rate 250k", 0)]


def test_a_silent_client_is_dropped_and_never_holds_up_the_others(server):
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.connect(server.path)                       # connects and says nothing
    serve(server, 3)
    got: list = []
    t = ask(server.path, "status", got)
    serve(server, 100, until=lambda: got)
    t.join(5)
    assert got and got[0]["message"] == "did status" and len(server.clients) == 1
    server.fake_clock.t += CLIENT_TIMEOUT + 0.1
    serve(server, 2)
    assert server.clients == {} and any("timed out" in line for line in server.log_lines)
    assert silent.recv(100) == b""                    # closed
    silent.close()


def test_a_handler_that_raises_answers_an_error_and_the_server_goes_on(tmp_path):
    s = ControlServer(str(tmp_path / "c.sock"), lambda line, peer: 1 / 0, lambda line, level=6: None, FakeClock())
    s.open()
    got: list = []
    t = ask(s.path, "status", got)
    serve(s, 100, until=lambda: got)
    t.join(5)
    s.close()
    assert got == [{"ok": False, "message": "internal error: ZeroDivisionError"}]


def test_a_stale_socket_is_replaced_but_a_live_one_is_not(server, tmp_path):
    with pytest.raises(ControlError, match="another run is listening there"):
        ControlServer(server.path, lambda line, peer: {}, print, FakeClock()).open()
    stale = tmp_path / "stale.sock"
    left = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    left.bind(str(stale))
    left.close()                                      # a file a crash left behind: nobody listens
    fresh = ControlServer(str(stale), lambda line, peer: {"ok": True}, print, FakeClock())
    fresh.open()
    fresh.close()
    assert not stale.exists()


def test_where_auto_puts_the_socket(tmp_path):
    closed = str(tmp_path / "no-such-run-dir")
    assert runtime_dir(0, {}, run_dir=closed) == closed                        # root: /run/loggen
    assert runtime_dir(1000, {"XDG_RUNTIME_DIR": str(tmp_path)}, run_dir=closed) == str(tmp_path)
    assert runtime_dir(1000, {}, run_dir=closed) == "/tmp/loggen-1000"


def test_the_client_finds_the_one_run_or_says_why_not(tmp_path):
    with pytest.raises(ControlError, match="no running loggend in"):
        find_socket(directory=str(tmp_path))
    import os
    mine = tmp_path / f"loggend-{os.getpid()}.sock"
    mine.touch()
    (tmp_path / "loggend-999999999.sock").touch()                              # a dead pid's: ignored
    assert find_socket(directory=str(tmp_path)) == str(mine)
    (tmp_path / "loggend-1.sock").touch()                                      # pid 1 is alive too
    with pytest.raises(ControlError, match="several runs"):
        find_socket(directory=str(tmp_path))
    assert find_socket(pid=os.getpid(), directory=str(tmp_path)) == str(mine)
    with pytest.raises(ControlError, match="no such control socket"):
        request(str(tmp_path / "gone.sock"), "status")


def test_sockets_of_runs_that_are_gone_are_swept(tmp_path):
    import os
    import socket

    from loggend.control.ctlsocket import sweep_stale
    for name in ("loggend-999999999.sock", f"loggend-{os.getpid()}.sock", "other.sock"):
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(tmp_path / name))
    (tmp_path / "loggend-999999998.sock").write_text("not a socket: never swept\n")
    assert sweep_stale(str(tmp_path)) == [str(tmp_path / "loggend-999999999.sock")]
    kept = ["loggend-999999998.sock", f"loggend-{os.getpid()}.sock", "other.sock"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)


def test_systemds_runtime_directory_first_and_units_one_level_down(tmp_path):
    import os
    unit = tmp_path / "loggen@second"
    unit.mkdir()
    assert runtime_dir(1000, {"RUNTIME_DIRECTORY": f"{unit}:/elsewhere"}, run_dir=str(tmp_path)) == str(unit)
    mine = unit / f"loggend-{os.getpid()}.sock"
    mine.touch()
    assert find_socket(directory=str(tmp_path)) == str(mine)
    assert find_socket(pid=os.getpid(), directory=str(tmp_path)) == str(mine)


@pytest.mark.parametrize("answer", [b'{"ok": 5}', b'"x"', b'{"ok": true, "status": 3}', b"[" * 50_000,
                                    b'{"ok": true, "message": 7}'])
def test_an_answer_of_another_kind_is_not_a_control_socket(tmp_path, answer):
    """Something else listening at the path: whatever JSON (or not) it answers is one error, never a
    KeyError or TypeError later."""
    path = str(tmp_path / "other.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)

    def answer_once() -> None:
        conn, _ = server.accept()
        conn.recv(1000)
        conn.sendall(answer + b"\n")
        conn.close()

    thread = threading.Thread(target=answer_once, daemon=True)
    thread.start()
    with pytest.raises(ControlError, match="not a loggend control socket"):
        request(path, "status")
    thread.join(5)
    server.close()
