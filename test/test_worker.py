"""The newest-frame slot and worker: no queue grows, every item is processed, failed or counted dropped."""

import threading
import time

import pytest

from seg_ros.ros.worker import FrameWorker, LatestSlot


def test_slot_keeps_only_the_newest_and_counts_the_rest():
    slot = LatestSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True and slot.put(3) is True
    assert slot.take(0) == (True, 3)
    assert slot.take(0) == (False, None)
    slot.done(True)
    c = slot.counts()
    assert (c.submitted, c.processed, c.dropped, c.pending, c.busy) == (3, 1, 2, 0, 0)


def test_slot_close_drops_what_waits_and_what_comes():
    slot = LatestSlot()
    slot.put("a")
    slot.close()
    assert slot.take(0) == (False, None)
    assert slot.put("b") is True
    c = slot.counts()
    assert (c.submitted, c.dropped, c.pending) == (2, 2, 0)


def test_busy_worker_processes_the_first_and_the_newest_only():
    gate = threading.Event()
    seen = []

    def process(item):
        seen.append(item)
        gate.wait(10)

    w = FrameWorker(process).start()
    w.submit(0)
    deadline = time.monotonic() + 10
    while w.counts().busy == 0:  # the worker has taken item 0 and is blocked in process()
        assert time.monotonic() < deadline
        time.sleep(0.001)
    for i in range(1, 101):
        w.submit(i)
    assert w.counts().pending == 1  # one slot, never a queue
    gate.set()
    assert w.wait_idle(10)
    assert seen == [0, 100]
    c = w.counts()
    assert (c.submitted, c.processed, c.dropped, c.failed) == (101, 2, 99, 0)
    assert w.stop()


def test_exceptions_are_counted_reported_and_survived():
    errors = []

    def process(item):
        if item % 2:
            raise ValueError(f"bad {item}")

    def on_error(e, item):
        errors.append((str(e), item))
        if item == 3:
            raise RuntimeError("the reporter itself fails")

    w = FrameWorker(process, on_error).start()
    for i in range(6):
        w.submit(i)
        assert w.wait_idle(10)
    c = w.counts()
    assert (c.processed, c.failed, c.dropped) == (3, 3, 0)
    assert errors == [("bad 1", 1), ("bad 3", 3), ("bad 5", 5)]
    assert w.alive
    w.stop()


def test_min_interval_limits_the_rate_and_drops_the_rest():
    starts = []
    w = FrameWorker(lambda item: starts.append(time.monotonic()), min_interval_s=0.25).start()
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 0.6:
        w.submit(n)
        n += 1
        time.sleep(0.005)
    assert w.wait_idle(10)
    w.stop()
    assert 1 <= len(starts) <= 4  # 0.6 s at 4 Hz
    assert all(b - a >= 0.25 - 1e-3 for a, b in zip(starts, starts[1:]))
    c = w.counts()
    assert c.submitted == n == c.processed + c.dropped


def test_concurrent_producers_lose_nothing():
    w = FrameWorker(lambda item: sum(range(200))).start()

    def produce(k):
        for i in range(2000):
            w.submit((k, i))

    threads = [threading.Thread(target=produce, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert w.wait_idle(10)
    w.stop()
    c = w.counts()
    assert c.submitted == 8000 and c.processed + c.dropped + c.failed == 8000 and c.processed >= 1


def test_stop_counts_the_waiting_item_and_later_ones_as_dropped():
    gate = threading.Event()
    w = FrameWorker(lambda item: gate.wait(10)).start()
    w.submit(1)
    while w.counts().busy == 0:
        time.sleep(0.001)
    w.submit(2)
    gate.set()
    assert w.stop(10)
    w.submit(3)
    c = w.counts()
    assert c.submitted == 3 and c.processed + c.dropped == 3 and c.pending == 0


def test_negative_interval_is_refused():
    with pytest.raises(ValueError, match="min_interval_s"):
        FrameWorker(lambda item: None, min_interval_s=-1)


def _busy_then_wait(w, timeout=10.0):
    """Wait until ``w`` has processed one item (its rate wait, if any, has begun)."""
    deadline = time.monotonic() + timeout
    while w.counts().processed + w.counts().failed < 1:
        assert time.monotonic() < deadline
        time.sleep(0.001)


@pytest.mark.parametrize("interval", [1000.0, 1e300])
def test_a_rate_change_applies_while_the_worker_waits(interval):
    """0.001 Hz or 1e-300 Hz, then unlimited: the waiting frame goes at once, not after the old interval."""
    seen = []
    w = FrameWorker(seen.append, min_interval_s=interval).start()
    w.submit(1)
    _busy_then_wait(w)
    w.submit(2)
    time.sleep(0.2)
    assert seen == [1] and w.alive and w.counts().pending == 1  # held back by the rate, thread alive
    w.min_interval_s = 0.0
    assert w.wait_idle(5)
    assert seen == [1, 2]
    assert w.stop(5)


def test_stop_ends_a_rate_wait_at_once():
    w = FrameWorker(lambda item: None, min_interval_s=1000.0).start()
    w.submit(1)
    _busy_then_wait(w)
    t0 = time.monotonic()
    assert w.stop(5)
    assert time.monotonic() - t0 < 2


@pytest.mark.parametrize("value", [float("inf"), float("nan"), -1e-9])
def test_interval_must_be_finite_and_not_negative(value):
    w = FrameWorker(lambda item: None)
    with pytest.raises(ValueError, match="finite and >= 0"):
        w.min_interval_s = value
    assert w.min_interval_s == 0.0


@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt(), MemoryError("x"), GeneratorExit()])
def test_the_worker_survives_whatever_process_and_on_error_raise(exc):
    """Neither the frame's exception nor one raised by the error reporter (even a BaseException) ends the thread."""
    reported = []

    def process(item):
        if item == "bad":
            raise exc

    def on_error(e, item):
        reported.append(type(e))
        raise type(exc)()

    w = FrameWorker(process, on_error).start()
    for item in ("bad", "good", "bad", "good"):
        w.submit(item)
        assert w.wait_idle(10)
    assert w.alive
    c = w.counts()
    assert (c.processed, c.failed, c.dropped) == (2, 2, 0)
    assert reported == [type(exc)] * 2
    assert w.stop(5)
