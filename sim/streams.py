"""cocotb stream (valid/ready) verification components for Amaranth ``lib.stream`` ports.

An Amaranth stream port ``NAME`` becomes the Verilog ports ``NAME__valid``, ``NAME__ready`` and
``NAME__payload`` (the payload flattened to one vector). :class:`StreamSource` drives one,
:class:`StreamSink` receives from one; both can insert random stalls. :class:`Scoreboard`
compares what a sink receives with expected values in order.

Timing: both sides change their outputs just after a rising clock edge and decide whether a
transfer happened in the read-only phase before the next edge, when the combinational
``valid``/``ready`` logic has settled.
"""

import random
from collections import deque

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

__all__ = ["Scoreboard", "StreamSink", "StreamSource"]


class StreamSource:
    """Drives the stream ``prefix`` of ``dut`` with payloads (integers) queued by :meth:`send`.

    ``idle`` is the probability of holding ``valid`` low for a cycle while data is queued. The
    cycle of every transfer is kept in ``transfer_cycles`` (cycles counted from :meth:`start`,
    like :class:`StreamSink`'s).
    """

    def __init__(self, dut, prefix, clock, *, idle=0.0, rng=None):
        self._valid = getattr(dut, f"{prefix}__valid")
        self._ready = getattr(dut, f"{prefix}__ready")
        self._payload = getattr(dut, f"{prefix}__payload")
        self._clock = clock
        self.idle = idle
        self._rng = rng or random.Random()
        self._queue = deque()
        self._valid.value = 0
        self._task = None
        self._transferred = False
        self.sent = 0
        self.cycle = 0
        self.transfer_cycles = []

    def start(self):
        self._task = cocotb.start_soon(self._drive())
        return self

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._valid.value = 0

    def clear(self):
        """Drop the payloads not yet sent (e.g. at a reset)."""
        self._queue.clear()

    def send(self, payload):
        self._queue.append(payload)

    async def _drive(self):
        presenting = False
        while True:
            await RisingEdge(self._clock)
            self.cycle += 1
            if presenting and self._transferred:
                self._queue.popleft()
                self.sent += 1
            presenting = bool(self._queue) and self._rng.random() >= self.idle
            self._valid.value = int(presenting)
            if presenting:
                self._payload.value = self._queue[0]
            await ReadOnly()
            self._transferred = presenting and bool(self._ready.value)
            if self._transferred:
                self.transfer_cycles.append(self.cycle)


class StreamSink:
    """Receives from the stream ``prefix`` of ``dut``; calls ``callback(payload)`` with each
    transferred payload (an integer). ``stall`` is the probability of holding ``ready`` low for a
    cycle. The cycle of every transfer is kept in ``transfer_cycles``, counted from
    :meth:`start`."""

    def __init__(self, dut, prefix, clock, callback, *, stall=0.0, rng=None):
        self._valid = getattr(dut, f"{prefix}__valid")
        self._ready = getattr(dut, f"{prefix}__ready")
        self._payload = getattr(dut, f"{prefix}__payload")
        self._clock = clock
        self._callback = callback
        self.stall = stall
        self._rng = rng or random.Random()
        self._ready.value = 0
        self._task = None
        self.cycle = 0
        self.transfer_cycles = []

    def start(self):
        self._task = cocotb.start_soon(self._receive())
        return self

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._ready.value = 0

    async def _receive(self):
        while True:
            await RisingEdge(self._clock)
            self.cycle += 1
            ready = self._rng.random() >= self.stall
            self._ready.value = int(ready)
            await ReadOnly()
            if ready and self._valid.value:
                self.transfer_cycles.append(self.cycle)
                self._callback(int(self._payload.value))


class Scoreboard:
    """Checks received items against expected ones, in order.

    ``decode`` turns a received payload into the form of the expected items. Mismatches and
    items nobody expected are recorded; :meth:`check` raises on any of them and on expected
    items that never arrived.
    """

    def __init__(self, decode, log):
        self._decode = decode
        self._log = log
        self.expected = deque()
        self.errors = []
        self.matched = 0

    def expect(self, item):
        self.expected.append(item)

    def clear(self):
        self.expected.clear()

    def receive(self, payload):
        got = self._decode(payload)
        if not self.expected:
            self.errors.append(f"unexpected output {got}")
            self._log.error("unexpected output %s", got)
            return
        want = self.expected.popleft()
        if got != want:
            self.errors.append(f"output {self.matched + len(self.errors)}: got {got}, "
                               f"expected {want}")
            self._log.error("mismatch: got %s, expected %s", got, want)
        else:
            self.matched += 1

    def check(self):
        problems = list(self.errors)
        if self.expected:
            problems.append(f"{len(self.expected)} expected output(s) missing, first "
                            f"{self.expected[0]}")
        assert not problems, "; ".join(problems[:5])
