# amaranth: UnusedElaboratable=no
"""cocotb tests of :class:`rtl.xnor_popcount.XnorPopcountArray` against the golden model.

Run through :mod:`sim.runner`, which passes the array parameters (``pe``, ``simd``, ``groups``,
``max_beats``, ``acc_width``, ``latency``). The bench is a :class:`sim.streams.StreamBench` on
the array (:class:`ArrayBench`); every output is checked by its scoreboard against
``fracbnn_golden.bitops.xnor_dot``. The stream-contract tests (:data:`CONTRACT`) are
``throughput_and_latency`` and ``reset_mid_stream``.
"""

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from fracbnn_golden.bitops import xnor_dot
from rtl.xnor_popcount import XnorPopcountArray
from sim.runner import testbench_params
from sim.streams import StreamBench, StreamContract, stream_contract_tests

_GOLDEN_WORD_BITS = 64
# The testbench parameters that are constructor arguments of the array.
_ARGUMENTS = ("pe", "simd", "max_beats", "groups", "acc_width", "popcount_stages")


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


class ArrayBench(StreamBench):
    """A :class:`StreamBench` on the array (built again from the testbench parameters for its
    payload layouts), with random words and accumulations and their golden sums."""

    def __init__(self, dut, **kwargs):
        params = testbench_params()
        array = XnorPopcountArray(**{key: params[key] for key in _ARGUMENTS if key in params})
        assert (array.acc_width, array.latency) == (params["acc_width"], params["latency"])
        super().__init__(dut, array, **kwargs)
        self.pe, self.simd, self.groups = array.pe, array.simd, array.groups
        self.group_bits = self.simd // self.groups
        self.max_beats = array.max_beats
        self.latency = array.latency

    def dot(self, activations, weight, counts):
        mask = (1 << self.group_bits) - 1
        return sum(golden_dot((activations >> (g * self.group_bits)) & mask,
                              (weight >> (g * self.group_bits)) & mask, count, self.group_bits)
                   for g, count in enumerate(counts))

    def random_word(self, kind="random"):
        if kind == "ones":
            return (1 << self.simd) - 1
        if kind == "zeros":
            return 0
        return self.rng.getrandbits(self.simd)

    def random_counts(self, partial=0.3):
        """One count per group: usually full, sometimes any value 0..group bits."""
        full = self.group_bits
        return [self.rng.randint(0, full) if self.rng.random() < partial else full
                for _ in range(self.groups)]

    def queue_accumulation(self, beats, make_beat=None):
        """Send one accumulation of ``beats`` beats and expect its sums.

        ``make_beat(index)`` returns (activations, weights, counts); random by default.
        """
        sums = [0] * self.pe
        for index in range(beats):
            if make_beat is None:
                activations = self.random_word()
                weights = [self.random_word() for _ in range(self.pe)]
                counts = self.random_counts()
            else:
                activations, weights, counts = make_beat(index)
            for pe, weight in enumerate(weights):
                sums[pe] += self.dot(activations, weight, counts)
            self.send({"activations": activations, "weights": weights,
                       "count": counts[0] if self.groups == 1 else counts,
                       "last": int(index == beats - 1)})
        self.expect(sums)

    async def drain(self, settle_cycles=None, timeout_cycles=None):
        """:meth:`StreamBench.drain`, watching ``latency + 5`` cycles for unexpected outputs
        by default and waiting long enough for ``max_beats``-beat accumulations."""
        await super().drain(self.latency + 5 if settle_cycles is None else settle_cycles,
                            timeout_cycles or 200 + 4 * (self.source.sent + 1000))


@cocotb.test()
async def random_with_stalls(dut):
    """Random data, counts and accumulation lengths; random idle cycles and back-pressure."""
    bench = ArrayBench(dut, idle=0.3, stall=0.4)
    await bench.start()
    for _ in range(60):
        beats = bench.rng.choice([1, 2, 3, 9, 18, bench.rng.randint(1, bench.max_beats)])
        bench.queue_accumulation(min(beats, bench.max_beats))
    await bench.drain()


@cocotb.test()
async def corners(dut):
    """All-ones and all-zeros words, full, partial and empty counts."""
    bench = ArrayBench(dut)
    await bench.start()
    full = bench.group_bits
    for a_kind in ("ones", "zeros"):
        for w_kind in ("ones", "zeros"):
            for count in (full, 0, 1, max(full - 1, 0), (full + 1) // 2):
                beat = (bench.random_word(a_kind),
                        [bench.random_word(w_kind) for _ in range(bench.pe)],
                        [count] * bench.groups)
                bench.queue_accumulation(1, lambda index, beat=beat: beat)
    # The largest magnitudes the accumulators hold: max_beats beats of full agreement/disagreement.
    for w_kind in ("ones", "zeros"):
        beat = (bench.random_word("ones"), [bench.random_word(w_kind)] * bench.pe,
                [full] * bench.groups)
        bench.queue_accumulation(bench.max_beats, lambda index, beat=beat: beat)
    await bench.drain()


@cocotb.test()
async def zero_count_taps_and_partial_words(dut):
    """3x3 windows with zero-padded taps (count 0) and a partly filled last word."""
    bench = ArrayBench(dut, idle=0.2, stall=0.2)
    await bench.start()
    words = max(1, min(3, bench.max_beats // 9))
    for _ in range(10):
        padded = {tap for tap in range(9) if bench.rng.random() < 0.3}
        last_count = bench.rng.randint(1, bench.group_bits)

        def make_beat(index, padded=padded, last_count=last_count):
            tap, word = divmod(index, words)
            count = 0 if tap in padded else (last_count if word == words - 1
                                             else bench.group_bits)
            return (bench.random_word(), [bench.random_word() for _ in range(bench.pe)],
                    [count] * bench.groups)

        bench.queue_accumulation(9 * words, make_beat)
    await bench.drain()


async def accumulation_timing(bench):
    """Without stalls one beat transfers per cycle, and a single-beat accumulation comes out
    ``latency`` cycles after it went in."""
    bench.queue_accumulation(1)
    await bench.drain()
    latency = bench.sink.transfer_cycles[0] - bench.source.transfer_cycles[0]
    assert latency == bench.latency, f"latency {latency}, documented {bench.latency}"

    beats = 3 * min(9, bench.max_beats)
    for _ in range(3):
        bench.queue_accumulation(beats // 3)
    await bench.drain()
    cycles = bench.source.transfer_cycles[-beats:]
    assert cycles[-1] - cycles[0] == beats - 1, f"{beats} beats took {cycles[-1] - cycles[0] + 1}"
    gaps = [b - a for a, b in zip(bench.sink.transfer_cycles[-3:], bench.sink.transfer_cycles[-2:])]
    assert gaps == [beats // 3] * 2, f"outputs {gaps} cycles apart, expected {beats // 3}"


async def reset_in_accumulation(bench):
    """A reset in the middle of an accumulation drops it; the next one comes out right."""
    bench.queue_accumulation(min(12, bench.max_beats))
    for _ in range(bench.rng.randint(3, 8)):
        await RisingEdge(bench.clock)
    await bench.reset_mid_stream()
    for beats in (min(9, bench.max_beats), 1):
        bench.queue_accumulation(beats)
    await bench.drain()


# The array is the design's only unit: its contract tests carry no unit prefix.
CONTRACT = StreamContract(accumulation_timing, reset_in_accumulation, idle=0.1, stall=0.1)
stream_contract_tests(globals(), lambda dut, unit, **kwargs: ArrayBench(dut, **kwargs),
                      {"": CONTRACT})
