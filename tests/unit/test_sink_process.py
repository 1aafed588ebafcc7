"""The sink process's parts on real loopback sockets, in this process: bounded work per wake-up,
counting at the stop, slots for announced and own streams, and the kernel's figures."""

import socket
import time

import pytest

from loggend.engine import counters as C
from loggend.engine.counters import CounterBlock
from loggend.sink.accounting import Accounting
from loggend.sink.procnet import listeners, queue_figures
from loggend.sink.receiver import BATCH, Receiver, open_sockets
from loggend.sink.sinkspec import SinkSpec
from loggend.sink.sinkworker import SinkWorker
from tests.support.processes import msg


def filled(count: int, stream: str = "w0") -> tuple[socket.socket, socket.socket]:
    (rx,) = open_sockets("127.0.0.1", (0,), reuseport=False, gro=False)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.connect(rx.getsockname())
    for s in range(count):
        tx.send(msg(stream, s))
    return rx, tx


def test_a_drain_stops_after_its_calls_and_says_more_is_queued():
    """The read loop once returned only when a read brought fewer than 64 datagrams: a sink behind
    published nothing and ignored SIGTERM. Now each wake-up does a bounded amount of work."""
    rx, tx = filled(1000)
    receiver, acc = Receiver(), Accounting()
    assert receiver.drain(rx.fileno(), acc, calls=2) is True
    assert acc.received == 2 * BATCH
    while receiver.drain(rx.fileno(), acc, calls=2):
        pass
    assert acc.received == 1000 and acc.lost == 0
    rx.close()
    tx.close()


def test_counting_at_the_stop_reads_without_accounting():
    rx, tx = filled(300)
    receiver = Receiver()
    got, more = receiver.count(rx.fileno(), calls=1)
    assert (got, more) == (BATCH, True)
    rest, more = receiver.count(rx.fileno(), calls=100)
    assert (got + rest, more) == (300, False)
    rx.close()
    tx.close()


def test_the_kernel_says_what_is_queued_and_who_receives_on_a_port():
    rx, tx = filled(50)
    inode = {__import__("os").fstat(rx.fileno()).st_ino}
    drops, queued = queue_figures(inode)
    assert drops == 0 and queued > 50 * len(msg("w0", 0))
    port = rx.getsockname()[1]
    assert [r.inode for r in listeners((port,), "udp", "127.0.0.1")] == list(inode)
    assert listeners((port,), "udp", "127.0.0.2") == []           # another address takes nothing of ours
    assert [r.inode for r in listeners((port,), "udp", "0.0.0.0")] == list(inode)     # a wildcard loses to it
    rx.close()
    tx.close()


def sink(streams: CounterBlock, announced: int = 0, index: int = 0, offset: int = 0) -> tuple[SinkWorker, CounterBlock]:
    block = CounterBlock(1)
    worker = SinkWorker(SinkSpec("127.0.0.1", (0,)), block.slot(0), streams=streams, index=index,
                        announced=announced, stream_offset=offset)
    worker.own_slots()
    return worker, block


def test_announced_streams_go_to_their_slots_and_others_are_counted_apart():
    """A foreign stream `evil1` once overwrote worker 1's figures."""
    streams = CounterBlock(8)                          # 2 sink processes x width 4
    streams.set_name(0, b"w0")
    streams.set_name(1, b"w1")
    worker, block = sink(streams, announced=4, index=1, offset=4)
    acc = worker.accounting
    for s in (0, 1, 2, 4):
        acc.add(msg("w1", s))
        acc.add(msg("evil1", s * 10))
    acc.add(msg("w1", 999_999_999_999))                # forged: an outlier, not a gap of a trillion
    worker.publish(None, None)
    slot = block.values(0)
    assert (slot[C.SINK_RECEIVED], slot[C.SINK_GAPS], slot[C.SINK_FOREIGN], slot[C.SINK_FOREIGN_STREAMS],
            slot[C.SINK_STREAMS], slot[C.SINK_OUTLIERS]) == (9, 1, 4, 1, 1, 1)
    w1 = streams.values(4 + 1)                         # this process's range, worker 1's index
    assert (w1[C.STREAM_RECEIVED], w1[C.STREAM_GAPS], w1[C.STREAM_OUTLIERS], w1[C.STREAM_FIRST],
            w1[C.STREAM_NEXT]) == (5, 1, 1, 1, 5)
    assert streams.values(1)[C.STREAM_RECEIVED] == 0    # the first process's range is not touched
    assert all(streams.values(i)[C.STREAM_RECEIVED] == 0 for i in (4, 6, 7))


def test_on_its_own_a_sink_names_the_streams_it_sees_in_its_own_range():
    streams = CounterBlock(2 * C.STREAM_SLOTS_PER_SINK)
    worker, _ = sink(streams, index=1, offset=C.STREAM_SLOTS_PER_SINK)
    for i in range(C.STREAM_SLOTS_PER_SINK + 5):
        worker.accounting.add(msg(f"s{i}", 0))
    worker.publish(None, None)
    named = streams.named()
    assert len(named) == C.STREAM_SLOTS_PER_SINK and named[0] == (C.STREAM_SLOTS_PER_SINK, b"s0")
    again, _ = sink(streams, index=1, offset=C.STREAM_SLOTS_PER_SINK)      # a restarted process keeps them
    assert again.names[b"s0"] == 0 and not again.free_slots


@pytest.mark.alone
def test_publishing_costs_the_same_with_a_million_foreign_names():
    """1M stream names once cost 354 MB and 95 % of a core: now they are capped and never summed."""
    streams = CounterBlock(4)
    streams.set_name(0, b"w0")
    worker, block = sink(streams, announced=4)
    acc = worker.accounting
    for i in range(40_000):
        acc.add_run(b"x%d" % i, 0, 1)
    worker.publish(None, None)
    start = time.perf_counter()
    for _ in range(100):
        worker.publish(None, None)
    per_publish = (time.perf_counter() - start) / 100
    assert len(acc.streams) <= acc.max_streams and acc.overflow == 40_000 - acc.max_streams
    assert block.values(0)[C.SINK_FOREIGN] == acc.max_streams
    assert per_publish < 0.005, per_publish            # no walk over the streams (it took ~10 ms per 16k)
