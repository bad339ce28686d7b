"""cocotb tests of :class:`rtl.xnor_popcount.XnorPopcountArray` against the golden model.

Run through :mod:`sim.runner`, which passes the array parameters (``pe``, ``simd``, ``groups``,
``max_beats``, ``acc_width``, ``latency``). Every output is checked by a scoreboard against
``fracbnn_golden.bitops.xnor_dot``.
"""

import random

import cocotb
import numpy as np
from amaranth.hdl import Shape
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from fracbnn_golden.bitops import xnor_dot
from rtl.xnor_popcount import beat_layout
from sim.runner import testbench_params
from sim.streams import Scoreboard, StreamSink, StreamSource

_GOLDEN_WORD_BITS = 64


def golden_dot(activations, weights, count, width):
    """``xnor_dot`` of ``width``-bit words held in Python integers: split into 64-bit words
    (the widest the golden model takes), the valid bit count spread over them."""
    total = 0
    mask = (1 << _GOLDEN_WORD_BITS) - 1
    for word in range(-(-width // _GOLDEN_WORD_BITS)):
        shift = word * _GOLDEN_WORD_BITS
        word_count = min(max(count - shift, 0), _GOLDEN_WORD_BITS)
        total += int(xnor_dot(np.uint64((activations >> shift) & mask),
                              np.uint64((weights >> shift) & mask), word_count))
    return total


class ArrayModel:
    """The array's parameters, payload packing and golden sums."""

    def __init__(self, params):
        self.pe = params["pe"]
        self.simd = params["simd"]
        self.groups = params["groups"]
        self.group_bits = self.simd // self.groups
        self.max_beats = params["max_beats"]
        self.acc_width = params["acc_width"]
        self.latency = params["latency"]
        layout = beat_layout(self.pe, self.simd, self.groups)
        self._offsets = {name: field.offset for name, field in layout}
        self._count_bits = (layout["count"].width if self.groups == 1
                            else Shape.cast(layout["count"].shape.elem_shape).width)

    def pack(self, activations, weights, counts, last):
        """The input payload of one beat; ``counts`` has one count per group."""
        payload = activations << self._offsets["activations"]
        for index, word in enumerate(weights):
            payload |= word << (self._offsets["weights"] + index * self.simd)
        for index, count in enumerate(counts):
            payload |= count << (self._offsets["count"] + index * self._count_bits)
        return payload | (int(last) << self._offsets["last"])

    def dot(self, activations, weight, counts):
        mask = (1 << self.group_bits) - 1
        return sum(golden_dot((activations >> (g * self.group_bits)) & mask,
                              (weight >> (g * self.group_bits)) & mask, count, self.group_bits)
                   for g, count in enumerate(counts))

    def unpack_sums(self, payload):
        sums = []
        for index in range(self.pe):
            value = (payload >> (index * self.acc_width)) & ((1 << self.acc_width) - 1)
            sums.append(value - (1 << self.acc_width) if value >> (self.acc_width - 1) else value)
        return tuple(sums)


class Bench:
    """The array with a driver on ``i``, a monitor on ``o`` and a scoreboard."""

    def __init__(self, dut, *, idle=0.0, stall=0.0, seed=None):
        self.dut = dut
        self.model = ArrayModel(testbench_params())
        self.rng = random.Random(cocotb.RANDOM_SEED if seed is None else seed)
        self.scoreboard = Scoreboard(self.model.unpack_sums, dut._log)
        self.source = StreamSource(dut, "i", dut.clk, idle=idle, rng=self.rng)
        self.sink = StreamSink(dut, "o", dut.clk, self.scoreboard.receive, stall=stall,
                               rng=self.rng)

    async def start(self):
        cocotb.start_soon(Clock(self.dut.clk, 10, unit="ns").start())
        await self.reset()
        self.source.start()
        self.sink.start()

    async def reset(self, cycles=3):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles)
        self.dut.rst.value = 0

    def random_word(self, kind="random"):
        bits = self.model.simd
        if kind == "ones":
            return (1 << bits) - 1
        if kind == "zeros":
            return 0
        return self.rng.getrandbits(bits)

    def random_counts(self, partial=0.3):
        """One count per group: usually full, sometimes any value 0..group bits."""
        full = self.model.group_bits
        return [self.rng.randint(0, full) if self.rng.random() < partial else full
                for _ in range(self.model.groups)]

    def queue_accumulation(self, beats, make_beat=None):
        """Send one accumulation of ``beats`` beats and expect its sums.

        ``make_beat(index)`` returns (activations, weights, counts); random by default.
        """
        sums = [0] * self.model.pe
        for index in range(beats):
            if make_beat is None:
                activations = self.random_word()
                weights = [self.random_word() for _ in range(self.model.pe)]
                counts = self.random_counts()
            else:
                activations, weights, counts = make_beat(index)
            for pe, weight in enumerate(weights):
                sums[pe] += self.model.dot(activations, weight, counts)
            self.source.send(self.model.pack(activations, weights, counts, index == beats - 1))
        self.scoreboard.expect(tuple(sums))

    async def drain(self, timeout_cycles=None):
        """Wait until every expected output arrived (or the timeout), then check."""
        limit = timeout_cycles or 200 + 4 * (self.source.sent + 1000)
        for _ in range(limit):
            await RisingEdge(self.dut.clk)
            if not self.scoreboard.expected and not self.scoreboard.errors:
                break
        for _ in range(self.model.latency + 5):  # outputs nobody expected would show up here
            await RisingEdge(self.dut.clk)
        self.scoreboard.check()


@cocotb.test()
async def random_with_stalls(dut):
    """Random data, counts and accumulation lengths; random idle cycles and back-pressure."""
    bench = Bench(dut, idle=0.3, stall=0.4)
    await bench.start()
    for _ in range(60):
        beats = bench.rng.choice([1, 2, 3, 9, 18, bench.rng.randint(1, bench.model.max_beats)])
        bench.queue_accumulation(min(beats, bench.model.max_beats))
    await bench.drain()


@cocotb.test()
async def corners(dut):
    """All-ones and all-zeros words, full, partial and empty counts."""
    bench = Bench(dut)
    await bench.start()
    full = bench.model.group_bits
    for a_kind in ("ones", "zeros"):
        for w_kind in ("ones", "zeros"):
            for count in (full, 0, 1, max(full - 1, 0), (full + 1) // 2):
                beat = (bench.random_word(a_kind),
                        [bench.random_word(w_kind) for _ in range(bench.model.pe)],
                        [count] * bench.model.groups)
                bench.queue_accumulation(1, lambda index, beat=beat: beat)
    # The largest magnitudes the accumulators hold: max_beats beats of full agreement/disagreement.
    for w_kind in ("ones", "zeros"):
        beat = (bench.random_word("ones"), [bench.random_word(w_kind)] * bench.model.pe,
                [full] * bench.model.groups)
        bench.queue_accumulation(bench.model.max_beats, lambda index, beat=beat: beat)
    await bench.drain()


@cocotb.test()
async def zero_count_taps_and_partial_words(dut):
    """3x3 windows with zero-padded taps (count 0) and a partly filled last word."""
    bench = Bench(dut, idle=0.2, stall=0.2)
    await bench.start()
    words = max(1, min(3, bench.model.max_beats // 9))
    for _ in range(10):
        padded = {tap for tap in range(9) if bench.rng.random() < 0.3}
        last_count = bench.rng.randint(1, bench.model.group_bits)

        def make_beat(index, padded=padded, last_count=last_count):
            tap, word = divmod(index, words)
            count = 0 if tap in padded else (last_count if word == words - 1
                                             else bench.model.group_bits)
            return (bench.random_word(), [bench.random_word() for _ in range(bench.model.pe)],
                    [count] * bench.model.groups)

        bench.queue_accumulation(9 * words, make_beat)
    await bench.drain()


@cocotb.test()
async def throughput_and_latency(dut):
    """Without stalls one beat transfers per cycle, and a single-beat accumulation comes out
    ``latency`` cycles after it went in."""
    bench = Bench(dut)
    await bench.start()
    bench.queue_accumulation(1)
    await bench.drain()
    latency = bench.sink.transfer_cycles[0] - bench.source.transfer_cycles[0]
    assert latency == bench.model.latency, (
        f"latency {latency}, documented {bench.model.latency}")

    beats = 3 * min(9, bench.model.max_beats)
    for _ in range(3):
        bench.queue_accumulation(beats // 3)
    await bench.drain()
    cycles = bench.source.transfer_cycles[-beats:]
    assert cycles[-1] - cycles[0] == beats - 1, f"{beats} beats took {cycles[-1] - cycles[0] + 1}"
    gaps = [b - a for a, b in zip(bench.sink.transfer_cycles[-3:], bench.sink.transfer_cycles[-2:])]
    assert gaps == [beats // 3] * 2, f"outputs {gaps} cycles apart, expected {beats // 3}"


@cocotb.test()
async def reset_mid_stream(dut):
    """A reset in the middle of an accumulation drops it; the next one comes out right."""
    bench = Bench(dut, idle=0.1, stall=0.1)
    await bench.start()
    bench.queue_accumulation(min(12, bench.model.max_beats))
    for _ in range(bench.rng.randint(3, 8)):
        await RisingEdge(dut.clk)
    bench.source.stop()
    bench.sink.stop()
    bench.source.clear()
    bench.scoreboard.clear()
    await RisingEdge(dut.clk)
    await bench.reset(2)
    await ReadOnly()
    assert not dut.o__valid.value, "o.valid stays high after reset"
    await RisingEdge(dut.clk)
    bench.source.start()
    bench.sink.start()
    for beats in (min(9, bench.model.max_beats), 1):
        bench.queue_accumulation(beats)
    await bench.drain()
