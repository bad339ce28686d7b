"""Code tables, block streams and expected outputs for the Huffman decoder's testbenches.

Used by ``sim/tb_huffman.py`` (in the simulator) and ``tests/test_huffman_rtl.py`` (to build the
design): both make the same tables from the same seeds, so the testbench needs only the
decoder's parameters. A decoder command is a :class:`LanedBlock`: a block split into the
decoder's lanes (symbol ``j`` in lane ``j % L``), each lane a :class:`Block` of its own bit
stream. :func:`expected_beats` is the reference of the decoder's output, a plain bit-by-bit
decoder of each lane built on the golden code's codewords (not on the decoder's limit tables).
"""

import dataclasses
from dataclasses import dataclass
from functools import cache

import numpy as np

from fracbnn_golden.huffman import (
    DEFAULT_MAX_LENGTH,
    CanonicalCode,
    compress_fracbnn,
    compress_model,
)
from fracbnn_golden.kernels import N_SYMBOLS, bnn_pynq_cnv_kernels
from rtl.schedule import AcceleratorConfig

from .regression import SimCase, UnitGroup

__all__ = ["ANY", "Block", "DecoderTables", "LanedBlock", "cnv_blocks", "corrupt_block",
           "decoder_tables", "decoder_unit", "expected_beats", "fracbnn_blocks", "huffman_case",
           "huffman_decoder", "huffman_decoders", "model_blocks", "random_block",
           "random_lane", "random_symbols", "word_stream", "corrupt_lane", "laned_blocks"]

# The weight cache's code length limit.
MAX_LENGTH = DEFAULT_MAX_LENGTH
WORD_WIDTH = 64
# FracBNN blocks: pe = 16 output channels (the weight cache's); the largest is conv1's 16 x 96.
FRACBNN_BLOCK_CHANNELS = AcceleratorConfig().pe
# BNN-PYNQ CNV blocks of 8 output channels (24 to 2,048 kernels, a multiple of every
# decoder's lanes).
CNV_BLOCK_CHANNELS = 8
# Symbols of a lane.
MAX_COUNT = 1024
# Blocks per CNV layer in the throughput test: about 20,000 symbols, like the FracBNN stream.
CNV_THROUGHPUT_BLOCKS = 4
# The decoders of the test design, by symbols per cycle.
PER_CYCLE = (1, 4)
# Room for a lane of MAX_COUNT symbols of the longest code, plus corrupted lengths.
MAX_BLOCK_BITS = MAX_COUNT * MAX_LENGTH + 64


@dataclass(frozen=True)
class Block:
    """One lane of a decoder command: ``bits`` stream bits from bit ``start`` of ``stream`` (a
    uint8 bit array), ``count`` symbols, code table ``table`` (an index into the decoder's
    tables)."""
    table: int
    start: int
    bits: int
    count: int
    stream: np.ndarray

    def command(self, word_width=WORD_WIDTH):
        return {"table": self.table, "skip": self.start % word_width, "bits": self.bits,
                "count": self.count}

    def block_bits(self):
        """The block's own bits (zero beyond the end of the stream)."""
        bits = self.stream[self.start:self.start + self.bits]
        return np.concatenate([bits, np.zeros(self.bits - len(bits), dtype=np.uint8)])


@dataclass(frozen=True)
class LanedBlock:
    """One decoder command: a block of ``count`` symbols per lane in ``lanes`` (a tuple of
    :class:`Block`, one per lane of the decoder, all with the same table and count)."""
    lanes: tuple

    @property
    def table(self):
        return self.lanes[0].table

    @property
    def count(self):
        return self.lanes[0].count

    def command(self, word_width=WORD_WIDTH):
        return {"table": self.table, "count": self.count,
                "lanes": [{"skip": lane.start % word_width, "bits": lane.bits}
                          for lane in self.lanes]}

    def first_words(self, word_width=WORD_WIDTH):
        """For :func:`rtl.huffman.decode_cycles`: the cycle by which each lane has its first
        ``min(3, words)`` words when every lane's words come one per cycle from cycle 1."""
        from rtl.huffman import FIRST_WINDOW_WORDS
        return [min(FIRST_WINDOW_WORDS, len(word_stream(lane, word_width)))
                for lane in self.lanes]

    def replace_lane(self, index, lane):
        lanes = list(self.lanes)
        lanes[index] = lane
        return LanedBlock(tuple(lanes))


def word_stream(block, word_width=WORD_WIDTH):
    """The words the decoder takes for ``block``: those holding its bits, whole."""
    first = block.start // word_width
    words = -(-(block.start % word_width + block.bits) // word_width)
    bits = block.stream[first * word_width:(first + words) * word_width]
    bits = np.concatenate([bits, np.zeros(words * word_width - len(bits), dtype=np.uint8)])
    weights = 1 << np.arange(word_width, dtype=object)
    return [int((bits[w * word_width:(w + 1) * word_width].astype(object) * weights).sum())
            for w in range(words)]


class _Any:
    """A symbol the decoder may give any value (after a bad codeword)."""

    def __eq__(self, other):
        return True

    def __hash__(self):
        return 0

    def __repr__(self):
        return "ANY"


ANY = _Any()


def _decode_one(code, bits, position):
    """``(symbol, length)`` of the codeword at ``position`` of the block ``bits``, or None when
    no codeword lies there entirely within the block."""
    value = 0
    for length in range(1, code.max_length + 1):
        if position + length > len(bits):
            return None
        value = (value << 1) | int(bits[position + length - 1])
        rank = value - int(code.first_code[length])
        if 0 <= rank < int(code.counts[length]):
            return int(code.indirection[int(code.first_index[length]) + rank]), length
    return None


def _decode_lane(code, bits, count):
    """The symbols of one lane up to its first bad codeword, and whether the lane is bad (a
    bad codeword, or bits left over after ``count`` symbols)."""
    symbols, position = [], 0
    while len(symbols) < count:
        found = _decode_one(code, bits, position)
        if found is None:
            return symbols, True
        symbols.append(found[0])
        position += found[1]
    return symbols, position != len(bits)


def expected_beats(code, lanes, count, per_cycle):
    """The decoder's beats for one command: a list of ``(symbols, last, error)``.

    ``lanes`` are the lanes' bits (``2 * per_cycle`` of them), each with ``count`` symbols.
    Symbol ``j`` of the block is lane ``j % L``'s symbol ``j // L``; a beat holds the next
    ``per_cycle`` symbols, ``2 * count`` beats in all, the last one with ``last`` and with
    ``error`` if any lane is bad. From a lane's first bad codeword on, the symbols in stream
    order are :data:`ANY`."""
    decoded = [_decode_lane(code, bits, count) for bits in lanes]
    total = count * len(lanes)
    # The first symbol in stream order that no lane gives for sure.
    first_bad = min([len(symbols) * len(lanes) + index
                     for index, (symbols, _) in enumerate(decoded)
                     if len(symbols) < count] + [total])
    order = [decoded[j % len(lanes)][0][j // len(lanes)] if j < first_bad else ANY
             for j in range(total)]
    error = any(bad for _, bad in decoded)
    beats = []
    for start in range(0, total, per_cycle):
        last = start + per_cycle >= total
        beats.append((tuple(order[start:start + per_cycle]), last, last and error))
    return beats


def laned_blocks(blocks, lanes):
    """Consecutive groups of ``lanes`` :class:`Block` (a laned model's streams) as
    :class:`LanedBlock`."""
    return [LanedBlock(tuple(blocks[first:first + lanes]))
            for first in range(0, len(blocks), lanes)]


def model_blocks(model, table_offset=0, layers=None):
    """Every block of a :class:`CompressedModel` (or of the named layers) as :class:`Block`."""
    stream = model.payload_bit_array()
    starts, ends, counts, owner = model.blocks()
    blocks = []
    for start, end, count, layer in zip(starts, ends, counts, owner):
        if layers is None or model.layers[layer].name in layers:
            blocks.append(Block(table_offset + model.layers[layer].table, int(start),
                                int(end - start), int(count), stream))
    return blocks


def random_symbols(rng, kind, size):
    """Kernel symbols of one kind of random histogram."""
    if kind == "uniform":
        return rng.integers(0, N_SYMBOLS, size)
    if kind == "zipf":
        ranks = np.minimum(rng.zipf(1.3, size), N_SYMBOLS) - 1
        return rng.permutation(N_SYMBOLS)[ranks]
    if kind == "single":
        return np.full(size, 0x1A5)
    if kind == "geometric":
        # Every symbol used, steeply skewed: the 12-bit length limit binds.
        weights = 0.75 ** np.arange(N_SYMBOLS)
        counts = np.maximum(1, np.round(weights / weights.sum() * 40 * size)).astype(np.int64)
        return rng.permutation(np.repeat(rng.permutation(N_SYMBOLS), counts))[:size]
    raise ValueError(kind)


def _random_histogram_symbols(kind, seed, size=4096):
    symbols = random_symbols(np.random.default_rng(seed), kind, size)
    if kind == "geometric":
        symbols = np.concatenate([symbols, np.arange(N_SYMBOLS)])    # every symbol at least once
    return symbols


RANDOM_KINDS = ("uniform", "zipf", "single", "geometric")
# An incomplete code (Kraft sum 7/8): the bits 111 are no codeword.
INCOMPLETE_LENGTHS = {0x000: 1, 0x1FF: 2, 0x0AA: 3}


@dataclass(frozen=True)
class DecoderTables:
    """The decoder's code tables and where each source's tables start."""
    codes: tuple
    fracbnn: object          # CompressedModel, tables from index 0
    cnv: object              # CompressedModel, tables from cnv_offset
    cnv_offset: int
    random: dict             # kind -> (table index, symbols)
    incomplete: int          # table index of the incomplete code


@cache
def _laned_model(source, lanes):
    """The FracBNN (``fracbnn``) or CNV (``cnv``) kernels compressed with ``lanes`` lanes."""
    if source == "fracbnn":
        return compress_fracbnn(block_channels=FRACBNN_BLOCK_CHANNELS, lanes=lanes)
    return compress_model(bnn_pynq_cnv_kernels(), block_channels=CNV_BLOCK_CHANNELS, lanes=lanes)


@cache
def decoder_tables():
    """The tables of the test design: the bundled FracBNN model's (shared table), the BNN-PYNQ
    CNV kernels' (``tables="auto"``), one per random histogram kind, and an incomplete code."""
    fracbnn = compress_fracbnn(block_channels=FRACBNN_BLOCK_CHANNELS)
    cnv = compress_model(bnn_pynq_cnv_kernels(), block_channels=CNV_BLOCK_CHANNELS)
    codes = list(fracbnn.tables)
    cnv_offset = len(codes)
    codes.extend(cnv.tables)
    random = {}
    for seed, kind in enumerate(RANDOM_KINDS):
        symbols = _random_histogram_symbols(kind, seed)
        freqs = np.bincount(symbols, minlength=N_SYMBOLS)
        random[kind] = (len(codes), symbols)
        codes.append(CanonicalCode.from_frequencies(freqs, MAX_LENGTH))
    lengths = np.zeros(N_SYMBOLS, dtype=np.int64)
    for symbol, length in INCOMPLETE_LENGTHS.items():
        lengths[symbol] = length
    incomplete = len(codes)
    codes.append(CanonicalCode(lengths))
    return DecoderTables(tuple(codes), fracbnn, cnv, cnv_offset, random, incomplete)


def fracbnn_blocks(tables, lanes):
    """Every block of the FracBNN model's 19 binary convs, in order, in ``lanes`` lanes (the
    same code tables as ``tables.fracbnn``'s: lanes do not change the histograms)."""
    model = _laned_model("fracbnn", lanes)
    assert model.tables == tables.fracbnn.tables
    return laned_blocks(model_blocks(model), lanes)


def cnv_blocks(tables, lanes, per_layer=2):
    """The first ``per_layer`` blocks of every BNN-PYNQ CNV layer, in ``lanes`` lanes."""
    model = _laned_model("cnv", lanes)
    assert model.tables == tables.cnv.tables
    blocks = []
    for layer in model.layers:
        blocks += laned_blocks(model_blocks(model, tables.cnv_offset, [layer.name]),
                               lanes)[:per_layer]
    return blocks


def random_block(code, table, rng, lanes, max_count=300, longest=False):
    """A block of 1 to ``max_count`` random symbols of ``code`` per lane (only those of the
    longest code length if ``longest``), each lane at a random bit offset (0 to 191) of a
    random stream of its own."""
    count = int(rng.integers(1, max_count + 1))
    return LanedBlock(tuple(random_lane(code, table, rng, count, longest)
                            for _ in range(lanes)))


def random_lane(code, table, rng, count, longest=False):
    """A lane of ``count`` random symbols of ``code`` (:func:`random_block`)."""
    used = np.flatnonzero(code.lengths)
    if longest:
        used = used[code.lengths[used] == code.lengths[used].max()]
    symbols = rng.choice(used, count)
    bits = code.encode(symbols)
    before = rng.integers(0, 2, int(rng.integers(0, 192))).astype(np.uint8)
    after = rng.integers(0, 2, int(rng.integers(0, 64))).astype(np.uint8)
    return Block(table, len(before), len(bits), len(symbols),
                 np.concatenate([before, bits, after]))


def corrupt_block(laned, kind, rng):
    """A lane of ``laned`` damaged (:func:`corrupt_lane`), or for ``count`` the count of
    every lane one more or one fewer."""
    if kind == "count":
        change = 1 if laned.count == 1 or rng.random() < 0.5 else -1
        return LanedBlock(tuple(dataclasses.replace(lane, count=lane.count + change)
                                for lane in laned.lanes))
    index = int(rng.integers(len(laned.lanes)))
    return laned.replace_lane(index, corrupt_lane(laned.lanes[index], kind, rng))


def corrupt_lane(block, kind, rng):
    """``block`` damaged: ``flip`` 1 to 3 of its bits, ``truncate`` (1 to 12 bits fewer),
    ``leftover`` (1 to 40 bits more, the stream's next bits)."""
    if kind == "flip" and block.bits:
        stream = block.stream.copy()
        for at in rng.choice(block.bits, min(block.bits, int(rng.integers(1, 4))),
                             replace=False):
            stream[block.start + at] ^= 1
        return dataclasses.replace(block, stream=stream)
    if kind == "truncate" and block.bits:
        return dataclasses.replace(block, bits=block.bits
                                   - int(rng.integers(1, min(12, block.bits) + 1)))
    if kind == "leftover":
        return dataclasses.replace(block, bits=block.bits + int(rng.integers(1, 41)))
    raise ValueError(f"unknown corruption {kind!r}")


def huffman_decoder(symbols_per_cycle, word_width=WORD_WIDTH, max_length=MAX_LENGTH,
                    max_block_bits=MAX_BLOCK_BITS, max_count=MAX_COUNT):
    """A :class:`rtl.huffman.HuffmanDecoder` with the tables of :func:`decoder_tables`."""
    from rtl.huffman import HuffmanDecoder
    return HuffmanDecoder(decoder_tables().codes, symbols_per_cycle=symbols_per_cycle,
                          word_width=word_width, max_length=max_length,
                          max_block_bits=max_block_bits, max_count=max_count)


def decoder_unit(symbols_per_cycle):
    """The name of the decoder with ``symbols_per_cycle`` in :func:`huffman_decoders`."""
    return f"n{symbols_per_cycle}"


def huffman_decoders(per_cycle=PER_CYCLE, **kwargs):
    """The test design: a :class:`sim.regression.UnitGroup` of decoders (arguments of
    :func:`huffman_decoder`), one per entry of ``per_cycle``, named by :func:`decoder_unit`
    (decoder ``n4``'s ports are ``n4_cmd``, ``n4_words``, ``n4_symbols``, ``n4_error``)."""
    return UnitGroup({decoder_unit(n): huffman_decoder(n, **kwargs) for n in per_cycle})


def huffman_case():
    """:func:`huffman_decoders` under ``sim/tb_huffman.py`` (a :class:`sim.regression.SimCase`;
    the testbench gets the code lengths of every table as ``lengths``)."""
    lengths = [list(map(int, code.lengths)) for code in decoder_tables().codes]
    return SimCase("huffman_decoders", huffman_decoders, "sim.tb_huffman",
                   {"per_cycle": list(PER_CYCLE), "word_width": WORD_WIDTH,
                    "max_length": MAX_LENGTH, "max_block_bits": MAX_BLOCK_BITS,
                    "max_count": MAX_COUNT},
                   bench={"lengths": lengths}, derived=())
