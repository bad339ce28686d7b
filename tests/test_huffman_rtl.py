# amaranth: UnusedElaboratable=no
"""The RTL Huffman decoder (:class:`rtl.huffman.HuffmanDecoder`, 2 and 8 lanes): the cocotb
tests of ``sim/tb_huffman.py`` on decoders with 1 and 4 symbols per cycle (one Verilator build
for both), a subset under Icarus Verilog when it is installed; parameter checks; the timing
model :func:`rtl.huffman.decode_cycles`."""

import json
import shutil

import numpy as np
import pytest

from fracbnn_golden.huffman import CanonicalCode
from rtl.huffman import HuffmanDecoder, HuffmanLane, block_words, decode_cycles, lanes_for
from sim.huffman_cases import (
    ANY,
    CNV_THROUGHPUT_BLOCKS,
    PER_CYCLE,
    cnv_blocks,
    decoder_tables,
    decoder_unit,
    expected_beats,
    huffman_case,
)

# The subset run under Icarus (much slower than Verilator): short streams, errors, timing.
ICARUS_TESTS = ("invalid_codes_n4", "small_blocks_throughput_n1", "small_blocks_throughput_n4")

needs_icarus = pytest.mark.skipif(
    shutil.which("iverilog") is None,
    reason="Icarus Verilog (iverilog) is not on PATH: apt-get install iverilog")


def _throughput(result, name, per_cycle):
    path = result.build_dir / f"throughput_{name}_{decoder_unit(per_cycle)}.json"
    return json.loads(path.read_text())


def test_every_check_runs_on_every_decoder():
    # sim/tb_huffman.py runs each of its checks on every decoder as ``<check>_n<N>``.
    names = huffman_case().test_names()
    checks = {name.rsplit("_", 1)[0] for name in names}
    assert len(checks) >= 9
    assert sorted(names) == sorted(f"{check}_{decoder_unit(n)}" for check in checks
                                   for n in PER_CYCLE)
    assert set(ICARUS_TESTS) <= set(names)


def test_decoders_verilator():
    case = huffman_case()
    result = case.run(simulator="verilator")
    assert result.passed
    assert sorted(test.name for test in result.tests) == sorted(case.test_names())
    kernels = sum(int(np.prod(layer.shape[:2])) for layer in decoder_tables().fracbnn.layers)
    for per_cycle in PER_CYCLE:
        # The rate on the real stream, blocks back to back (the testbench checked that the
        # first blocks alone take exactly the model's cycles): N symbols per cycle but for a
        # few cycles at the first block's start.
        fracbnn = _throughput(result, "fracbnn", per_cycle)
        assert fracbnn["symbols"] == kernels
        assert fracbnn["symbols_per_cycle"] > 0.99 * per_cycle
        # The CNV blocks are smaller (8 output channels, 24 to 2,048 kernels): more starts.
        cnv = _throughput(result, "cnv", per_cycle)
        assert cnv["symbols"] == sum(2 * per_cycle * block.count for block in cnv_blocks(
            decoder_tables(), 2 * per_cycle, per_layer=CNV_THROUGHPUT_BLOCKS))
        assert cnv["symbols_per_cycle"] > 0.98 * per_cycle


@needs_icarus
def test_decoders_icarus():
    result = huffman_case().run(simulator="icarus", testcase=list(ICARUS_TESTS))
    assert result.passed
    assert sorted(test.name for test in result.tests) == sorted(ICARUS_TESTS)


# ---- the timing model ----------------------------------------------------------------------

def test_decode_cycles_of_one_command():
    # Every lane holds its first three words in cycle 3: first windows in cycle 4, symbols
    # from cycle 6 (group 0) and 7 (group 1), then a beat per cycle: 2 * count beats.
    assert decode_cycles(10, [3, 3]) == 7 + 2 * 9
    assert decode_cycles(10, [3] * 8) == 7 + 2 * 9
    # Group 1's slowest lane sets its first beat; group 0 only bounds it from below.
    assert decode_cycles(10, [3, 3, 3, 9]) == 9 + 1 + 2 + 2 * 9
    assert decode_cycles(10, [9, 3, 3, 3]) == 9 + 1 + 2 + 1 + 2 * 9
    # A lane without words starts as soon as it holds the command (active from cycle 2).
    assert decode_cycles(1, [0, 0]) == 2 + 2 + 1


def test_decode_cycles_rejects_bad_arguments():
    with pytest.raises(ValueError, match="even number of lanes"):
        decode_cycles(4, [3, 3, 3])
    with pytest.raises(ValueError, match="count must be at least 1"):
        decode_cycles(0, [3, 3])
    with pytest.raises(ValueError, match="lane 1"):
        decode_cycles(4, [3, -1])


def test_block_words():
    assert block_words(0, 64, 64) == 1
    assert block_words(1, 64, 64) == 2
    assert block_words(63, 1, 64) == 1
    assert block_words(0, 0, 64) == 0


def test_lanes_for():
    assert [lanes_for(n) for n in (1, 2, 4, 8)] == [2, 4, 8, 16]
    with pytest.raises(ValueError, match="symbols_per_cycle"):
        lanes_for(0)


# ---- the reference the testbench compares with ------------------------------------------------

def test_expected_beats_against_the_golden_decoder():
    code = CanonicalCode.from_frequencies(np.arange(512) % 7 + 1)
    rng = np.random.default_rng(0)
    symbols = rng.integers(0, 512, (4, 6))                 # 4 lanes of 6 symbols
    lanes = [code.encode(lane) for lane in symbols]
    beats = expected_beats(code, lanes, 6, 2)
    assert len(beats) == 12 and all(len(b[0]) == 2 for b in beats)
    # Stream order: symbol j is lane j % 4's symbol j // 4.
    assert [s for b in beats for s in b[0]] == symbols.T.reshape(-1).tolist()
    assert [b[1:] for b in beats] == [(False, False)] * 11 + [(True, False)]
    # Left-over bits in a lane: every symbol, and an error on the last beat.
    beats = expected_beats(code, lanes, 5, 2)
    assert [s for b in beats for s in b[0]] == symbols[:, :5].T.reshape(-1).tolist()
    assert beats[-1][1:] == (True, True)
    # Too few bits in lane 2: its last symbol and every one after it may be anything.
    beats = expected_beats(code, lanes[:2] + [lanes[2][:-1]] + lanes[3:], 6, 2)
    order = [s for b in beats for s in b[0]]
    assert order[:22] == symbols.T.reshape(-1)[:22].tolist()
    assert all(s is ANY for s in order[22:]) and beats[-1][1:] == (True, True)


# ---- parameter checks ------------------------------------------------------------------------

def _code(max_length=12):
    return CanonicalCode.from_frequencies(np.arange(1, 513), max_length)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"codes": []}, TypeError, "codes must be a non-empty sequence"),
    ({"codes": None}, TypeError, "codes must be a non-empty sequence"),
    ({"codes": "code"}, TypeError, r"codes\[0\] must be a CanonicalCode"),
    ({"codes": [CanonicalCode(np.ones(8, dtype=int) * 3)]}, ValueError, "512 kernel symbols"),
    ({"codes": [_code(12)], "max_length": 11}, ValueError, "longer than max_length=11"),
    ({"symbols_per_cycle": 0}, ValueError, "symbols_per_cycle must be at least 1"),
    ({"symbols_per_cycle": 2.0}, TypeError, "symbols_per_cycle must be an integer"),
    ({"symbols_per_cycle": 6}, ValueError, "must not exceed word_width=64"),
    ({"word_width": 48}, ValueError, "word_width must be a power of two"),
    ({"word_width": 8}, ValueError, "must not exceed word_width=8"),
    ({"max_length": 40}, ValueError, "max_length must be at most 32"),
    ({"max_count": 0}, ValueError, "max_count must be at least 1"),
    ({"max_block_bits": 0}, ValueError, "max_block_bits must be at least 1"),
])
def test_decoder_rejects_bad_parameters(kwargs, error, message):
    arguments = {"codes": [_code()], **kwargs}
    codes = arguments.pop("codes")
    with pytest.raises(error, match=message):
        HuffmanDecoder(codes, **arguments)


def test_decoder_tables_and_ports():
    tables = decoder_tables()
    decoder = HuffmanDecoder(tables.codes, symbols_per_cycle=4, max_count=1024)
    assert decoder.lanes == 8
    lane = HuffmanLane(tables.codes, max_count=1024)
    # Limits: a left-aligned 12-bit value starts a codeword of length l iff it lies in
    # [limits[l - 1], limits[l]) -- checked against every codeword of every table; and the
    # window ROM gives the codeword's symbol for every window it starts.
    for index, (code, limits) in enumerate(zip(tables.codes, lane.limits)):
        rom = lane.window_symbols[index << 12:(index + 1) << 12]
        for symbol in np.flatnonzero(code.lengths):
            length = int(code.lengths[symbol])
            aligned = int(code.codewords[symbol]) << (12 - length)
            assert limits[length - 1] <= aligned < limits[length]
            assert set(rom[aligned:aligned + (1 << (12 - length))]) == {symbol}
    layout = decoder.symbols.payload.shape()
    assert dict(layout)["symbol"].shape.length == 4
    assert decoder.cmd.payload.table.shape().width == 4      # 9 tables
    assert len(decoder.cmd.payload.lanes) == 8
