# amaranth: UnusedElaboratable=no
"""The RTL Huffman decoder (:class:`rtl.huffman.HuffmanDecoder`): the cocotb tests of
``sim/tb_huffman.py`` on decoders with 1 and 4 symbols per cycle (one Verilator build for
both), a subset under Icarus Verilog when it is installed; parameter checks; the timing model
:func:`rtl.huffman.decode_cycles`."""

import json
import shutil

import numpy as np
import pytest

from fracbnn_golden.huffman import CanonicalCode
from rtl.huffman import HuffmanDecoder, block_words, decode_cycles
from sim.huffman_cases import (
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
        # The rate on the real stream (the testbench checked the cycles equal the model's):
        # N symbols per cycle but for a few cycles at each of the 43 blocks' starts.
        fracbnn = _throughput(result, "fracbnn", per_cycle)
        assert fracbnn["cycles"] == fracbnn["model_cycles"]
        assert fracbnn["symbols"] == kernels
        assert fracbnn["symbols_per_cycle"] > 0.99 * per_cycle
        # The CNV blocks are smaller (4 output channels, 12 to 1,024 kernels): more starts.
        cnv = _throughput(result, "cnv", per_cycle)
        assert cnv["cycles"] == cnv["model_cycles"]
        assert cnv["symbols"] == sum(block.count for block in cnv_blocks(
            decoder_tables(), per_layer=CNV_THROUGHPUT_BLOCKS))
        assert cnv["symbols_per_cycle"] > 0.99 * per_cycle


@needs_icarus
def test_decoders_icarus():
    result = huffman_case().run(simulator="icarus", testcase=list(ICARUS_TESTS))
    assert result.passed
    assert sorted(test.name for test in result.tests) == sorted(ICARUS_TESTS)


# ---- the timing model ----------------------------------------------------------------------

def test_decode_cycles_of_one_block():
    # Command in cycle 0, its two words in cycles 1 and 2, beats from cycle 3, the last beat's
    # transfer one cycle after it is decoded.
    assert decode_cycles([(0, 100, 40)], 4) == 3 + 10
    assert decode_cycles([(0, 100, 40)], 1) == 3 + 40
    # One word only: the first beat a cycle earlier.
    assert decode_cycles([(0, 64, 8)], 4) == 2 + 2
    # No symbols: still one (last) beat.
    assert decode_cycles([(0, 0, 0)], 4) == 2 + 1
    assert decode_cycles([], 4) == 0


def test_decode_cycles_of_long_blocks_add_up():
    # Blocks of many beats follow each other without a gap: only their beats add.
    one = decode_cycles([(5, 2000, 256)], 4)
    assert decode_cycles([(5, 2000, 256)] * 10, 4) == one + 9 * 64


def test_decode_cycles_of_short_blocks_wait_for_commands_and_words():
    # One-beat blocks: a command spends a cycle in the command register, and words come one
    # per cycle, so a block of two words and one beat takes more than one cycle.
    assert decode_cycles([(0, 64, 4)] * 10, 4) > decode_cycles([(0, 64, 4)], 4) + 9
    assert decode_cycles([(60, 40, 4)] * 10, 4) > decode_cycles([(0, 40, 4)] * 10, 4)


def test_block_words():
    assert block_words(0, 64, 64) == 1
    assert block_words(1, 64, 64) == 2
    assert block_words(63, 1, 64) == 1
    assert block_words(0, 0, 64) == 0


def test_decode_cycles_rejects_bad_commands():
    with pytest.raises(ValueError, match="command 1"):
        decode_cycles([(0, 10, 1), (64, 10, 1)], 4)
    with pytest.raises(ValueError, match="symbols_per_cycle"):
        decode_cycles([(0, 10, 1)], 0)


# ---- the reference the testbench compares with ------------------------------------------------

def test_expected_beats_against_the_golden_decoder():
    code = CanonicalCode.from_frequencies(np.arange(512) % 7 + 1)
    symbols = np.random.default_rng(0).integers(0, 512, 11)
    bits = code.encode(symbols)
    beats = expected_beats(code, bits, 11, 4)
    assert [len(b[0]) for b in beats] == [4, 4, 3]
    assert [s for b in beats for s in b[0]] == code.decode(bits, 11).tolist()
    assert [b[1:] for b in beats] == [(False, False), (False, False), (True, False)]
    # Left-over bits: all symbols, then an error on the last beat.
    assert expected_beats(code, bits, 8, 4)[-1] == (symbols[4:8].tolist(), True, True)
    # Too few bits: the symbols before the one that does not fit.
    assert expected_beats(code, bits[:-1], 11, 4)[-1] == (symbols[8:10].tolist(), True, True)


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
    decoder = HuffmanDecoder(tables.codes, symbols_per_cycle=4, max_count=2048)
    # The ROM holds every table's indirection table at its base.
    for code, base in zip(tables.codes, decoder.table_base):
        used = len(code.indirection)
        assert decoder.indirection[base:base + used] == code.indirection.tolist()
    assert len(decoder.indirection) == 1 << decoder.address_bits >= sum(
        len(code.indirection) for code in tables.codes)
    # Limits: a left-aligned 12-bit value starts a codeword of length l iff it lies in
    # [limits[l - 1], limits[l]) -- checked against every codeword of every table.
    for code, limits in zip(tables.codes, decoder.limits):
        for symbol in np.flatnonzero(code.lengths):
            length = int(code.lengths[symbol])
            aligned = int(code.codewords[symbol]) << (12 - length)
            assert limits[length - 1] <= aligned < limits[length]
    layout = decoder.symbols.payload.shape()
    assert dict(layout)["symbol"].shape.length == 4
    assert decoder.cmd.payload.table.shape().width == 4      # 9 tables
