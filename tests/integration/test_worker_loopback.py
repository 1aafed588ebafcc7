"""A real worker sending over real loopback sockets, on a fake clock so counts are exact."""

import errno
import os
import socket
import time
from bisect import bisect_right

import pytest

from loggend.engine import counters as C
from loggend.engine.counters import CounterBlock
from loggend.engine.group import WorkerGroup
from loggend.engine.render import timestamp_at
from loggend.engine.schedule import NS, Plan, PlanSource, Profile
from loggend.engine.spec import MessageSpec, WorkerSpec
from loggend.engine.syscalls import SO_RCVBUFFORCE
from loggend.engine.transport import GSO_FRAMES_PER_CALL, GSO_MMSG_MIN, KIND_REFUSED, GsoSender, fall_back
from loggend.engine.worker import Worker
from loggend.errors import EXIT_BOOT_FAILED, EXIT_OK
from tests.support.processes import seq_of
from tests.unit.test_render import RFC3164

MODES = ("gso", "sendmmsg", "sendto")


class FakeTime:
    """Monotonic and wall clocks that move 1 us per read and jump on sleep()."""

    def __init__(self, wall: float = 1_700_000_000.0) -> None:
        self.t = 100.0
        self.wall0 = wall - self.t
        self.sleeps: list[float] = []
        self.on_sleep = None

    def clock(self) -> float:
        self.t += 1e-6
        return self.t

    def wallclock(self) -> float:
        return self.wall0 + self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        if self.on_sleep is not None:
            self.on_sleep(self.t)


def fixed_plan(fake: FakeTime, rate: float, duration: float) -> PlanSource:
    """A one-worker plan that starts now on the fake clock."""
    return PlanSource(Plan(Profile.constant(rate), 1).start(int(fake.t * NS), duration))


def run_worker(port: int, fake: FakeTime, rate: float = 0, duration: float = 0, block: CounterBlock | None = None,
               **kw) -> tuple[int, C.SlotSnapshot, Worker]:
    messages = kw.pop("messages", MessageSpec(pool_size=1000))
    block = block or CounterBlock(1)
    spec = WorkerSpec(host="127.0.0.1", port=port, messages=messages, **kw)
    worker = Worker(spec, block.slot(0), fixed_plan(fake, rate, duration), clock=fake.clock,
                    wallclock=fake.wallclock, sleep=fake.sleep, log=lambda line, level=0: None)
    code = WorkerGroup.alone(worker).run()
    return code, block.snapshot(0), worker


@pytest.mark.parametrize("mode", MODES)
def test_each_transport_delivers_every_message_intact(receiver, mode):
    fake = FakeTime()
    code, snap, worker = run_worker(receiver.port, fake, rate=5000, duration=1.0, transport=mode)
    assert code == EXIT_OK
    assert worker.sender is not None and worker.sender.mode == mode
    assert snap.sent == 5000 and snap.transport == mode and snap.state == C.STATE_STOPPED
    got = receiver.wait_for(5000)
    assert len(got) == snap.sent                      # one message per datagram, none lost
    assert [seq_of(d) for d in got] == list(range(5000))   # the 1000-message pool wrapped 5 times
    assert sum(len(d) for d in got) == snap.bytes
    for d in got:
        assert RFC3164.fullmatch(d), d


@pytest.mark.parametrize("mode", MODES)
def test_a_restarted_worker_carries_on_its_stream(receiver, mode):
    """The slot already holds 2,345 sent (a previous life, in the plan's first 2.345 s): the stream
    continues at seq 2345 and the slot's total ends at the plan's quota."""
    fake = FakeTime()
    block = CounterBlock(1)
    block.slot(0)[C.SENT] = 2345
    plan = fixed_plan(fake, 1000, 4.345)
    fake.t += 2.345                                          # the new life starts on time: nothing missed
    spec = WorkerSpec(host="127.0.0.1", port=receiver.port, transport=mode, messages=MessageSpec(pool_size=1000))
    worker = Worker(spec, block.slot(0), plan, clock=fake.clock, wallclock=fake.wallclock, sleep=fake.sleep,
                    log=lambda line, level=0: None)
    assert WorkerGroup.alone(worker).run() == EXIT_OK
    assert block.snapshot(0).sent == 4345                  # the quota is the slot's total
    got = receiver.wait_for(2000)
    assert [seq_of(d) for d in got] == list(range(2345, 4345))


def test_timestamps_follow_the_clock_across_a_year_boundary(receiver):
    eve = 1798761598.0       # 2026-12-31 23:59:58 UTC
    fake = FakeTime(wall=eve)
    spec = MessageSpec(pool_size=1000, timezone="utc")
    code, snap, _ = run_worker(receiver.port, fake, rate=1000, duration=4.0, transport="gso", messages=spec)
    assert code == EXIT_OK and snap.sent == 4000
    got = receiver.wait_for(4000)
    stamps = [RFC3164.fullmatch(d) for d in got]
    seen = [b"%s %s %s:%s:%s" % (m["month"], m["day"], m["h"], m["m"], m["s"]) for m in stamps]
    assert seen[0] == timestamp_at(eve, True) == b"Dec 31 23:59:58"
    assert seen == sorted(seen, key=lambda s: s[:3] == b"Jan")                       # never back in time
    per_second = {stamp: seen.count(stamp) for stamp in dict.fromkeys(seen)}
    assert list(per_second)[:4] == [b"Dec 31 23:59:58", b"Dec 31 23:59:59", b"Jan  1 00:00:00", b"Jan  1 00:00:01"]
    burst = 20                                                  # 20 ms of traffic at 1,000 ev/s
    assert all(abs(n - 1000) <= burst for n in list(per_second.values())[:4]), per_second


@pytest.mark.alone
def test_unlimited_rate_sends_as_fast_as_possible_for_the_duration(receiver):
    block = CounterBlock(1)
    spec = WorkerSpec(host="127.0.0.1", port=receiver.port, transport="gso", messages=MessageSpec(pool_size=1000))
    plan = PlanSource(Plan(Profile.constant(0), 1).start(time.monotonic_ns(), 0.3))
    worker = Worker(spec, block.slot(0), plan, log=lambda line, level=0: None)       # real clock
    assert WorkerGroup.alone(worker).run() == EXIT_OK
    snap = block.snapshot(0)
    got = receiver.wait_for(snap.sent, timeout=2.0)
    assert snap.sent > 10_000 and 0 < len(got) <= snap.sent
    assert snap.heartbeat_ns - snap.started_ns < 2e9


def test_refused_sends_are_counted_not_fatal_and_not_counted_as_sent():
    """Nobody listens for the first half second, then a receiver binds the port.

    The kernel refuses sends after the ICMP port-unreachable comes back: those messages must be
    counted as refused, not as sent, and sent again under the same sequence numbers, so the
    receiver sees one contiguous run of numbers that ends exactly at the worker's SENT count.
    """
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()                      # nobody listens: the kernel answers port unreachable
    late = LateReceiver(port, at=100.5)
    fake = FakeTime()
    fake.on_sleep = late.maybe_bind
    try:
        code, snap, worker = run_worker(port, fake, rate=2000, duration=1.5, transport="gso")
        assert code == EXIT_OK and late.sock is not None
        seqs = sorted(seq_of(d) for d in late.drain(expect=snap.sent))
    finally:
        late.close()
    assert snap.errors[KIND_REFUSED] > 0                       # refused while nobody listened
    assert seqs and seqs == list(range(seqs[0], snap.sent))    # no hole after the refusals, none twice
    # before the receiver bound, some sends were accepted (the ICMP had not come back yet) and
    # vanished; everything after that was either refused (and resent) or delivered
    assert 0 < seqs[0] < 2000 * 0.6
    # refused events are charged against the plan (no retry storm): sent + refused is the quota exactly
    assert snap.sent + snap.errors[KIND_REFUSED] == 2000 * 1.5


class LateReceiver:
    """Binds ``port`` once the fake clock passes ``at``; collects what arrives after that."""

    def __init__(self, port: int, at: float) -> None:
        self.port, self.at = port, at
        self.sock: socket.socket | None = None

    def maybe_bind(self, now: float) -> None:
        if self.sock is None and now >= self.at:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
            self.sock.bind(("127.0.0.1", self.port))

    def drain(self, expect: int) -> list[bytes]:
        assert self.sock is not None
        self.sock.settimeout(0.5)
        got = []
        while len(got) < expect:
            try:
                got.append(self.sock.recv(65536))
            except TimeoutError:
                break
        return got

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


def test_a_target_the_socket_cannot_connect_to_is_a_boot_failure():
    block = CounterBlock(1)
    lines: list[str] = []
    # connect() to the broadcast address without SO_BROADCAST fails with EACCES: nothing is sent
    spec = WorkerSpec(host="255.255.255.255", port=9, transport="gso", messages=MessageSpec(pool_size=1000))
    plan = PlanSource(Plan(Profile.constant(1000), 1))
    worker = Worker(spec, block.slot(0), plan, log=lambda line, level=0: lines.append(line))
    assert WorkerGroup.alone(worker).run() == EXIT_BOOT_FAILED
    assert block.snapshot(0).state == C.STATE_FAILED and block.snapshot(0).sent == 0
    assert len(lines) == 1 and "cannot start sending to 255.255.255.255:9" in lines[0]


def test_gso_falls_back_to_sendmmsg_when_the_device_refuses_segmentation(receiver):
    from loggend.engine.render import build_pool
    from loggend.engine.transport import open_socket
    pool = build_pool(MessageSpec(pool_size=1000), 0, "w0", 0.0)
    sender = GsoSender(open_socket("127.0.0.1", receiver.port), pool)
    first = sender.send(100)                    # whole frames: the grant's tail waits for the next one
    assert 64 <= first <= 100
    sender.last_error = OSError(errno.EIO, "Input/output error")   # what a NIC without csum offload says
    sender.refused = 64
    sender.errors[3] += 64
    replacement = fall_back(sender)
    assert replacement is not None
    new, why = replacement
    assert new.mode == "sendmmsg" and "falling back" in why
    assert new.errors[3] == 0                   # resent, not lost
    assert new.send(50) == 50
    got = receiver.wait_for(first + 50)
    assert [seq_of(d) for d in got] == list(range(first + 50))


def test_send_errors_are_classified_by_kind():
    from loggend.engine.transport import KIND_OTHER, KIND_QUEUE_FULL, KIND_UNREACHABLE, error_kind
    assert error_kind(OSError(errno.ECONNREFUSED, "refused")) == KIND_REFUSED
    assert error_kind(OSError(errno.ENOBUFS, "no buffer space")) == KIND_QUEUE_FULL
    assert error_kind(OSError(errno.EAGAIN, "again")) == KIND_QUEUE_FULL
    assert error_kind(errno.ECONNREFUSED) == KIND_REFUSED and error_kind(errno.ENETDOWN) == KIND_UNREACHABLE
    assert error_kind(OSError(errno.EHOSTUNREACH, "no route")) == KIND_UNREACHABLE
    assert error_kind(OSError(errno.EPERM, "firewall")) == KIND_OTHER


def test_gso_grants_of_any_size_keep_the_stream_contiguous():
    """One sendmmsg per grant, trimmed where a grant starts or ends inside a frame: whatever the
    grant sizes (one message, a frame and a bit, more than a pool), every number goes out once, in
    order, and the byte count matches the wire.

    A grant of more than GSO_MMSG_MIN messages within GSO_FRAMES_PER_CALL frames is one system call;
    a smaller one is one sendmsg per frame: the rest of the frame it starts in, then only whole
    frames (the rest of the grant waits for the next, so a slow worker's frames stay full)."""
    import random
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE if os.geteuid() == 0 else socket.SO_RCVBUF, 64 << 20)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2)
    from loggend.engine.render import build_pool
    from loggend.engine.transport import open_socket
    sender = GsoSender(open_socket("127.0.0.1", rx.getsockname()[1]),
                       build_pool(MessageSpec(pool_size=1000), 0, "w0", 0.0))
    rng = random.Random(7)
    total = nbytes = 0
    seqs: list[int] = []
    pool = sender.pool
    partial = 0
    for _ in range(300):
        n = rng.choice([1, 2, 3, 17, 63, 64, 65, 100, 129, 200, 500, 999, 1000, 2500])
        calls, at = sender.calls, pool.first[sender.frame] + sender.offset
        if n <= GSO_MMSG_MIN:
            f = bisect_right(pool.first, at) - 1
            counts = pool.counts
            expect, frames = min(n, counts[f] - (at - pool.first[f])), 1
            f = (f + 1) % len(counts)
            while n - expect >= counts[f]:
                expect, frames, f = expect + counts[f], frames + 1, (f + 1) % len(counts)
            partial += expect < n
            assert sender.send(n) == expect and sender.calls - calls == frames, (n, expect, frames)
        else:
            frames = len({bisect_right(pool.first, (at + k) % pool.size) for k in range(n)})  # the frames it touches
            assert sender.send(n) == n
            expect = n
            if frames <= GSO_FRAMES_PER_CALL and at + n <= pool.size:     # (a grant across the pool's end takes two)
                assert sender.calls - calls == 1, (n, frames)
        total += expect
        while len(seqs) < total:
            d = rx.recv(65536)
            nbytes += len(d)
            seqs.append(seq_of(d))
    assert partial > 10                                   # grants that left their tail for the next one
    rx.close()
    assert seqs == list(range(total)) and sender.bytes == nbytes
