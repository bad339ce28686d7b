# amaranth: UnusedElaboratable=no
"""cocotb tests of :class:`rtl.huffman.HuffmanDecoder` against the golden code tables.

The design is :func:`sim.huffman_cases.huffman_decoders`: decoders with 1 and 4 symbols per
cycle side by side (one simulator build), named ``n1`` and ``n4``, with the tables of
:func:`sim.huffman_cases.decoder_tables` (the bundled FracBNN model's, the BNN-PYNQ CNV
kernels', random histograms' and an incomplete code). Every test runs on each decoder: test
``<check>_n<N>``. Parameters (:func:`sim.runner.testbench_params`): the design's arguments and
``lengths``, the code lengths of every table, which the testbench checks against the tables it
makes.

Every test drives ``cmd`` and each lane's ``words`` (exactly the words of each command's lane)
and receives ``symbols`` with :class:`DecoderBench`, which compares each beat (symbols,
``last``, ``error``) with :func:`sim.huffman_cases.expected_beats` in a
:class:`sim.streams.Scoreboard` (valid blocks are also checked against the golden decoder) and
checks the ``error`` output's rule every cycle. The throughput tests (no gaps, no stalls)
check that each of their first blocks alone takes exactly the cycles of
:func:`rtl.huffman.decode_cycles`, then stream all blocks back to back and write
``throughput_<stream>_n<N>.json`` (blocks, symbols, cycles, symbols per cycle) into the build
folder.
"""

import dataclasses
import json
import random
from collections import deque
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, Event, First, ReadOnly, RisingEdge

from rtl.huffman import decode_cycles
from sim.huffman_cases import (
    CNV_THROUGHPUT_BLOCKS,
    PER_CYCLE,
    RANDOM_KINDS,
    Block,
    LanedBlock,
    cnv_blocks,
    corrupt_block,
    decoder_tables,
    decoder_unit,
    expected_beats,
    fracbnn_blocks,
    huffman_decoders,
    random_block,
    random_lane,
    word_stream,
)
from sim.runner import testbench_params
from sim.streams import (
    Scoreboard,
    pack,
    payload_shape,
    pulse_reset,
    quiet_streams,
    register_tests,
    start_clock_and_reset,
    unpack,
)

CLOCK_NS = 10


class DecoderBench:
    """One decoder of the design under test: clock, reset, and one driver that feeds ``cmd``
    and every lane's ``words`` from queues (with random gaps, probability ``idle``), takes
    ``symbols`` (with random stalls, probability ``stall``) into a scoreboard, and checks the
    ``error`` output.

    One coroutine does all of it, two simulator triggers a cycle (the components of
    :mod:`sim.streams` take two each, which made the long streams four times slower). Its
    timing is theirs: outputs change just after the rising edge, transfers are decided in the
    read-only phase. ``cmd_cycles`` and ``beat_cycles`` record the cycle of every transfer.

    The ``error`` rule checked every cycle: it rises in the cycle after a beat with
    ``error = 1`` transfers, and otherwise keeps its value until the cycle after a ``cmd``
    transfer; reset clears it.
    """

    def __init__(self, dut, unit, *, idle=0.0, stall=0.0, seed=None):
        self.dut = dut
        self.params = testbench_params()
        self.tables = decoder_tables()
        assert [list(map(int, code.lengths)) for code in self.tables.codes] == \
            self.params["lengths"], "the testbench's code tables differ from the design's"
        arguments = {key: self.params[key] for key in ("per_cycle", "word_width", "max_length",
                                                        "max_block_bits", "max_count")}
        design = huffman_decoders(**arguments)
        quiet_streams(dut, design)
        self.decoder = design.units[unit]
        self.n = self.decoder.symbols_per_cycle
        self.lanes = self.decoder.lanes
        self.word_width = self.decoder.word_width
        self.cmd_shape = payload_shape(self.decoder, "cmd")
        self.out_shape = payload_shape(self.decoder, "symbols")
        self.error_bit = dict(self.out_shape)["error"].offset
        self.port = {name: getattr(dut, f"{unit}_{name}") for name in (
            "cmd__valid", "cmd__ready", "cmd__payload", "symbols__valid", "symbols__ready",
            "symbols__payload", "error")}
        self.word_ports = [{name: getattr(dut, f"{unit}_words__{lane}__{name}")
                            for name in ("valid", "ready", "payload")}
                           for lane in range(self.lanes)]
        self.rng = random.Random(cocotb.RANDOM_SEED if seed is None else seed)
        self.idle, self.stall = idle, stall
        self.scoreboard = Scoreboard(self._decode, dut._log)
        self.commands = deque()
        self.words = [deque() for _ in range(self.lanes)]
        self.cmd_cycles, self.beat_cycles = [], []
        self.error_problems = []
        self.error_beats = 0
        self.cycle = 0
        self.done = Event()
        self.paused = False             # drive nothing, take nothing (around a reset)
        self.blocks = 0
        self.symbols = 0

    def _decode(self, bits):
        beat = unpack(self.out_shape, bits)
        return tuple(beat["symbol"]), bool(beat["last"]), bool(beat["error"])

    async def start(self):
        await start_clock_and_reset(self.dut.clk, self.dut.rst, CLOCK_NS)
        cocotb.start_soon(self._drive())

    async def _drive(self):
        port, rng, clock = self.port, self.rng, self.dut.clk
        # Of the last cycle: the error flag, a cmd transfer, a beat held, an error beat taken.
        previous = (0, False, False, False)
        driven = {}                     # what was last written to each input (writes cost)

        def drive(name, value):
            if driven.get(name) != value:
                port[name].value = value
                driven[name] = value

        def drive_word(lane, name, value):
            if driven.get((lane, name)) != value:
                self.word_ports[lane][name].value = value
                driven[lane, name] = value

        while True:
            await RisingEdge(clock)
            self.cycle += 1
            offer_cmd = bool(self.commands) and rng.random() >= self.idle and not self.paused
            offer_words = [bool(words) and rng.random() >= self.idle and not self.paused
                           for words in self.words]
            take = rng.random() >= self.stall and not self.paused
            drive("cmd__valid", int(offer_cmd))
            if offer_cmd:
                drive("cmd__payload", self.commands[0])
            for lane, offer in enumerate(offer_words):
                drive_word(lane, "valid", int(offer))
                if offer:
                    drive_word(lane, "payload", self.words[lane][0])
            drive("symbols__ready", int(take))
            await ReadOnly()
            if self.paused:             # around a reset
                previous = (0, False, False, False)
                continue
            cmd_transfer = offer_cmd and bool(port["cmd__ready"].value)
            if cmd_transfer:
                self.commands.popleft()
                self.cmd_cycles.append(self.cycle)
            for lane, offer in enumerate(offer_words):
                if offer and self.word_ports[lane]["ready"].value:
                    self.words[lane].popleft()
            valid = bool(port["symbols__valid"].value)
            payload = int(port["symbols__payload"].value) if valid else 0
            if valid and take:
                self.beat_cycles.append(self.cycle)
                self.scoreboard.receive(payload)
                if not self.scoreboard.expected or self.scoreboard.errors:
                    self.done.set()
            # The error flag.
            flag = int(port["error"].value)
            flag_before, cmd_before, held, error_taken = previous
            error_beat = valid and bool((payload >> self.error_bit) & 1)
            self.error_beats += error_beat and not held
            expected = int(error_taken or (flag_before and not cmd_before))
            if flag != expected and len(self.error_problems) < 5:
                self.error_problems.append(f"cycle {self.cycle}: error = {flag}, expected "
                                           f"{expected}")
            previous = (flag, cmd_transfer, valid and not take, error_beat and take)

    def send(self, block):
        """Queue one :class:`LanedBlock` (command and words) and its expected beats; returns
        the beats."""
        assert len(block.lanes) == self.lanes
        self.commands.append(pack(self.cmd_shape, block.command(self.word_width)))
        for lane, words in zip(block.lanes, self.words):
            words.extend(word_stream(lane, self.word_width))
        code = self.tables.codes[block.table]
        beats = expected_beats(code, [lane.block_bits() for lane in block.lanes], block.count,
                               self.n)
        for beat in beats:
            self.scoreboard.expect(beat)
        if not beats[-1][2]:
            # A valid block: the reference agrees with the golden decoder.
            order = [symbol for beat in beats for symbol in beat[0]]
            for index, lane in enumerate(block.lanes):
                golden = code.decode(lane.block_bits(), lane.count)
                assert order[index::self.lanes] == golden.tolist()
        self.blocks += 1
        self.symbols += self.lanes * block.count
        self.done.clear()
        return beats

    async def drain(self, timeout_cycles=None):
        """Wait for every expected beat, check that every word was taken and no more are
        wanted, that no beat follows, and check the scoreboard and the error flag."""
        limit = timeout_cycles or 2000 + 4 * (len(self.scoreboard.expected) * self.n
                                              + sum(map(len, self.words)))
        if self.scoreboard.expected:
            await First(self.done.wait(), ClockCycles(self.dut.clk, limit))
        await ClockCycles(self.dut.clk, 10)
        await ReadOnly()
        self.scoreboard.check()
        assert not self.commands, f"{len(self.commands)} commands not taken"
        assert not any(self.words), f"{sum(map(len, self.words))} words not taken (hung?)"
        assert not any(port["ready"].value for port in self.word_ports), \
            "the decoder wants words no command needs"
        assert not self.port["symbols__valid"].value, "a beat nobody expected"
        assert not self.error_problems, "; ".join(self.error_problems)
        await RisingEdge(self.dut.clk)
        self.dut._log.info("%d blocks, %d symbols, %d beats matched", self.blocks,
                           self.symbols, self.scoreboard.matched)

    async def reset(self, cycles=2):
        """Reset in the middle of whatever runs: from the next cycle on offer and take
        nothing, empty both queues and the scoreboard, pulse reset, check the outputs are
        idle, go on."""
        self.paused = True
        await RisingEdge(self.dut.clk)
        self.commands.clear()
        for words in self.words:
            words.clear()
        self.scoreboard.clear()
        await pulse_reset(self.dut.clk, self.dut.rst, cycles)
        await ReadOnly()
        assert not self.port["symbols__valid"].value, "symbols.valid high right after reset"
        assert not self.port["error"].value, "error high right after reset"
        await RisingEdge(self.dut.clk)
        self.paused = False


async def stream_blocks(dut, unit, blocks, idle=0.3, stall=0.3):
    bench = DecoderBench(dut, unit, idle=idle, stall=stall)
    await bench.start()
    for block in blocks:
        bench.send(block)
    await bench.drain()
    return bench


def lanes_of(unit):
    """The lanes of the decoder ``unit`` of the design."""
    return huffman_decoders().units[unit].lanes


def slow_subset(blocks, unit):
    """Every block for the fast decoder; every fourth for the one-symbol decoder (the checks
    under stalls need not run 31,000 cycles twice)."""
    return blocks if unit != decoder_unit(1) else blocks[::4]


async def fracbnn_model(dut, unit):
    """The blocks of the bundled FracBNN model's 19 binary convs (16 output channels a block;
    all 43 for N = 4, every fourth for N = 1), random gaps on ``cmd`` and ``words`` and random
    stalls on ``symbols``."""
    blocks = fracbnn_blocks(decoder_tables(), lanes_of(unit))
    await stream_blocks(dut, unit, slow_subset(blocks, unit))


async def cnv_kernels(dut, unit):
    """Two blocks of every BNN-PYNQ CNV layer (three code tables), gaps and stalls."""
    await stream_blocks(dut, unit, cnv_blocks(decoder_tables(), lanes_of(unit)))


async def random_histograms(dut, unit):
    """Blocks of random symbols of every random table (uniform over 512, Zipf, one used symbol,
    all 512 used with codes up to 12 bits) and of the incomplete code, of random sizes (1 to
    60 symbols a lane) at random bit offsets, gaps and stalls."""
    tables = decoder_tables()
    rng = np.random.default_rng(7)
    lanes = lanes_of(unit)
    table_ids = [tables.random[kind][0] for kind in RANDOM_KINDS] + [tables.incomplete]
    blocks = [random_block(tables.codes[t], t, rng, lanes, max_count=60)
              for _ in range(6) for t in table_ids]
    await stream_blocks(dut, unit, blocks, idle=0.4, stall=0.4)


async def corrupted_streams(dut, unit):
    """Corrupted blocks, each followed by a valid one: flipped bits in a lane (invalid codes
    where the code is incomplete or has one symbol), a lane with too few bits, a lane with bits
    left over, a wrong count. Each kind must give error beats, the error flag must follow its
    rule, every word must be taken, and the valid block after each must decode correctly."""
    tables = decoder_tables()
    rng = np.random.default_rng(11)
    lanes = lanes_of(unit)
    bench = DecoderBench(dut, unit, idle=0.3, stall=0.3)
    await bench.start()
    sources = [tables.random[kind][0] for kind in RANDOM_KINDS] + [tables.incomplete]
    model = fracbnn_blocks(tables, lanes)[1:8]
    errors = {}
    for round_ in range(8):
        for kind in ("flip", "truncate", "leftover", "count"):
            table = sources[(round_ + len(errors)) % len(sources)]
            base = model[round_ % len(model)] if round_ % 4 == 0 else \
                random_block(tables.codes[table], table, rng, lanes, max_count=30)
            beats = bench.send(corrupt_block(base, kind, rng))
            errors[kind] = errors.get(kind, 0) + beats[-1][2]
            bench.send(random_block(tables.codes[table], table, rng, lanes, max_count=10))
    await bench.drain()
    dut._log.info("error blocks per corruption: %s; error beats seen %d", errors,
                  bench.error_beats)
    assert all(errors.values()), f"a corruption never caused an error: {errors}"
    assert bench.error_beats == sum(errors.values())


async def invalid_codes(dut, unit):
    """Bit patterns that are no codeword of the incomplete code (111) and of the one-symbol
    code (1), at every position of a lane, also right at a word boundary: an error on the
    block's last beat, and the symbols before the bad bits (in stream order) right."""
    tables = decoder_tables()
    bench = DecoderBench(dut, unit, idle=0.2, stall=0.2)
    await bench.start()
    rng = np.random.default_rng(5)
    lanes = bench.lanes
    errors = 0
    for table, bad in ((tables.incomplete, [1, 1, 1]), (tables.random["single"][0], [1])):
        code = tables.codes[table]
        used = np.flatnonzero(code.lengths)
        for skip in (0, 5, bench.word_width - 2):
            for at in range(0, 12, 3):
                count = int(rng.integers(at + 1, 14))
                symbols = rng.choice(used, count - 1)
                bits = code.encode(symbols)
                cut = len(code.encode(symbols[:at]))
                bits = np.concatenate([bits[:cut], bad, bits[cut:]]).astype(np.uint8)
                stream = np.concatenate([rng.integers(0, 2, skip).astype(np.uint8), bits])
                bad_lane = int(rng.integers(lanes))
                block = LanedBlock(tuple(
                    Block(table, skip, len(bits), count, stream) if lane == bad_lane else
                    random_lane(code, table, rng, count) for lane in range(lanes)))
                beats = bench.send(block)
                errors += beats[-1][2]
                assert beats[-1][2]
    await bench.drain()
    assert bench.error_beats == errors


async def reset_mid_block(dut, unit):
    """Resets in the middle of things: while a long block decodes, while a beat waits under
    back-pressure, and while a block with errors decodes (a FracBNN block read with the
    incomplete code); then whole blocks decode correctly."""
    tables = decoder_tables()
    rng = np.random.default_rng(3)
    bench = DecoderBench(dut, unit, idle=0.2, stall=0.3)
    await bench.start()
    model = fracbnn_blocks(tables, bench.lanes)
    # While decoding.
    bench.send(model[1])
    bench.send(model[2])
    await ClockCycles(dut.clk, bench.rng.randint(20, 200))
    await bench.reset()
    # While a beat waits.
    bench.send(model[0])
    await ClockCycles(dut.clk, bench.rng.randint(30, 60))
    bench.stall = 1.0
    await ClockCycles(dut.clk, 5)
    await ReadOnly()
    assert bench.port["symbols__valid"].value, "no beat waiting before the reset"
    await RisingEdge(dut.clk)
    bench.stall = 0.3
    await bench.reset()
    # While decoding a block with errors.
    wrong = LanedBlock(tuple(dataclasses.replace(lane, table=tables.incomplete)
                             for lane in model[0].lanes))
    bench.send(wrong)
    bench.send(model[4])
    await ClockCycles(dut.clk, bench.rng.randint(20, 100))
    await bench.reset()
    for block in model[5:8]:
        bench.send(block)
    table = tables.random["zipf"][0]
    bench.send(random_block(tables.codes[table], table, rng, bench.lanes))
    await bench.drain()


async def measure(dut, unit, name, blocks, timed=3):
    """The first ``timed`` blocks one at a time from an idle decoder, with every word offered
    at once, no gaps or stalls: each must take exactly the cycles of
    :func:`rtl.huffman.decode_cycles`. Then every block back to back: the symbols per cycle."""
    bench = DecoderBench(dut, unit)
    await bench.start()
    for block in blocks[:timed]:
        bench.send(block)
        await bench.drain()
        cycles = bench.beat_cycles[-1] - bench.cmd_cycles[-1]
        model = decode_cycles(block.count, block.first_words(bench.word_width))
        assert cycles == model, f"{cycles} cycles, decode_cycles says {model}"
    first_beat = len(bench.beat_cycles)
    first_cmd = len(bench.cmd_cycles)
    symbols = bench.symbols
    for block in blocks:
        bench.send(block)
    await bench.drain()
    cycles = bench.beat_cycles[-1] - bench.cmd_cycles[first_cmd] + 1
    assert len(bench.beat_cycles) > first_beat
    symbols = bench.symbols - symbols
    result = {"blocks": len(blocks), "symbols": symbols, "cycles": cycles,
              "symbols_per_cycle": symbols / cycles, "decoder_symbols_per_cycle": bench.n}
    Path(f"throughput_{name}_{unit}.json").write_text(json.dumps(result, indent=2) + "\n")
    dut._log.info("%s: %d symbols in %d cycles = %.3f symbols/cycle", name, symbols, cycles,
                  symbols / cycles)


async def fracbnn_throughput(dut, unit):
    """All 43 blocks of the FracBNN model back to back, no gaps or stalls: symbols per cycle;
    the first blocks alone exactly as modelled."""
    await measure(dut, unit, "fracbnn", fracbnn_blocks(decoder_tables(), lanes_of(unit)))


async def cnv_throughput(dut, unit):
    """The first blocks of every BNN-PYNQ CNV layer (8 output channels a block, three code
    tables) back to back, no gaps or stalls: symbols per cycle; the first blocks alone exactly
    as modelled."""
    await measure(dut, unit, "cnv", cnv_blocks(decoder_tables(), lanes_of(unit),
                                              per_layer=CNV_THROUGHPUT_BLOCKS))


async def small_blocks_throughput(dut, unit):
    """Random blocks of 1 to 6 symbols a lane (a few beats, up to three words a lane, codes of
    the longest length too), where commands and words rather than beats limit the speed; the
    first ones alone exactly as modelled."""
    tables = decoder_tables()
    rng = np.random.default_rng(13)
    blocks = []
    for index in range(40):
        table = index % len(tables.codes)
        blocks.append(random_block(tables.codes[table], table, rng, lanes_of(unit),
                                   max_count=6, longest=index % 3 == 0))
    await measure(dut, unit, "small_blocks", blocks, timed=10)


CHECKS = (fracbnn_model, cnv_kernels, random_histograms, corrupted_streams, invalid_codes,
          reset_mid_block, fracbnn_throughput, cnv_throughput, small_blocks_throughput)


register_tests(globals(), CHECKS, [decoder_unit(n) for n in PER_CYCLE], name="{check}_{unit}")
