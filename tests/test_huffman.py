"""Length-limited canonical Huffman coding of kernels and the compressed blob format."""

import heapq
import itertools
import struct
import zlib
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fracbnn_golden.bitops import unpack_bits
from fracbnn_golden.huffman import (
    CanonicalCode,
    CompressedFormatError,
    CompressedLayer,
    CompressedModel,
    compress_fracbnn,
    compress_kernels,
    compress_model,
    decompress_kernels,
)
from fracbnn_golden.kernels import (
    bnn_pynq_cnv_kernels,
    entropy_bits,
    fracbnn_conv_kernels,
    histogram,
    kernel_symbols,
    symbols_to_kernels,
)
from fracbnn_golden.model import PG_CONVS

FAST = settings(max_examples=80, deadline=None)


def huffman_cost(freqs):
    """Cost of a plain (unlimited) Huffman code, by the textbook heap algorithm."""
    heap = [int(f) for f in freqs if f > 0]
    if len(heap) == 1:
        return heap[0]
    heapq.heapify(heap)
    cost = 0
    while len(heap) > 1:
        merged = heapq.heappop(heap) + heapq.heappop(heap)
        cost += merged
        heapq.heappush(heap, merged)
    return cost


def brute_force_cost(freqs, max_length):
    """Cheapest prefix code with lengths 1..max_length for the used symbols (Kraft <= 1)."""
    used = np.array([f for f in freqs if f > 0])
    if len(used) == 1:
        return int(used[0])
    options = np.array(list(itertools.product(range(1, max_length + 1), repeat=len(used))))
    kraft_ok = (2.0 ** -options).sum(axis=1) <= 1
    return int((options[kraft_ok] @ used).min())


def zipf_freqs(rng, size=512, exponent=1.1, total=30000):
    freqs = np.zeros(size, dtype=np.int64)
    ranks = rng.permutation(size)
    weights = 1.0 / (np.arange(1, size + 1) ** exponent)
    freqs[ranks] = np.floor(weights / weights.sum() * total).astype(np.int64)
    return freqs


def frequencies(kind, seed):
    """A 512-symbol histogram of one of several shapes, made from a seed."""
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        freqs = rng.integers(0, 1000, 512)
    elif kind == "zipf":
        freqs = zipf_freqs(rng, exponent=rng.uniform(0.5, 2.0))
    elif kind == "single":
        freqs = np.zeros(512, dtype=np.int64)
        freqs[rng.integers(512)] = rng.integers(1, 100)
    elif kind == "all 512":
        freqs = rng.integers(1, 50, 512)
    else:                                                     # sparse: a few used symbols
        freqs = rng.integers(1, 20, 512) * (rng.random(512) < rng.uniform(0.005, 0.3))
    freqs = np.asarray(freqs, dtype=np.int64)
    if not freqs.any():
        freqs[seed % 512] = 1
    return freqs


frequency_arrays = st.builds(frequencies, st.sampled_from(["uniform", "zipf", "single",
                                                           "all 512", "sparse"]),
                             st.integers(0, 2**32 - 1))


# --- symbols ----------------------------------------------------------------------------------

def test_symbol_bit_order_is_row_major_lsb_first():
    kernel = np.zeros((3, 3), np.uint8)
    kernel[0, 1] = 1                     # ky = 0, kx = 1: bit 1
    kernel[2, 0] = 1                     # ky = 2, kx = 0: bit 6
    assert kernel_symbols(kernel) == (1 << 1) | (1 << 6)
    every = symbols_to_kernels(np.arange(512))
    assert every.dtype == np.uint8 and every.shape == (512, 3, 3)
    assert (kernel_symbols(every) == np.arange(512)).all()
    assert (every[511] == 1).all() and (every[0] == 0).all()


@pytest.mark.parametrize("kernels, error", [
    (np.zeros((4, 3, 3), np.int64), TypeError),
    (np.zeros((4, 3, 2), np.uint8), ValueError),
    (np.full((4, 3, 3), 2, np.uint8), ValueError),
])
def test_bad_kernels_are_rejected(kernels, error):
    with pytest.raises(error):
        compress_kernels(kernels)


# --- code construction ------------------------------------------------------------------------

@FAST
@given(st.lists(st.integers(0, 60), min_size=2, max_size=6), st.integers(1, 5))
def test_length_limited_code_is_optimal_against_brute_force(freqs, max_length):
    used = sum(f > 0 for f in freqs)
    if used == 0 or used > 2 ** max_length:
        return
    code = CanonicalCode.from_frequencies(np.array(freqs), max_length=max_length)
    assert code.lengths.max() <= max_length
    assert code.cost(freqs) == brute_force_cost(freqs, max_length)


@FAST
@given(frequency_arrays)
def test_unconstrained_code_equals_plain_huffman(freqs):
    code = CanonicalCode.from_frequencies(freqs, max_length=32)
    assert code.cost(freqs) == huffman_cost(freqs)


@FAST
@given(frequency_arrays, st.integers(9, 14))
def test_length_limit_honoured_and_kraft(freqs, max_length):
    code = CanonicalCode.from_frequencies(freqs, max_length=max_length)
    used = np.count_nonzero(freqs)
    assert code.lengths.max() <= max_length
    assert ((code.lengths > 0) == (freqs > 0)).all()          # unused symbols: length 0
    assert code.kraft_sum() == (Fraction(1, 2) if used == 1 else 1)
    assert code.cost(freqs) >= huffman_cost(freqs)            # a limit can only cost bits


def test_binding_limit_still_optimal_and_complete():
    freqs = np.zeros(512, dtype=np.int64)
    freqs[:40] = [2 ** min(i, 30) for i in range(40)]         # Huffman would go 39 deep
    free = CanonicalCode.from_frequencies(freqs, max_length=32)
    limited = CanonicalCode.from_frequencies(freqs, max_length=12)
    assert free.max_length > 12 and limited.max_length == 12
    assert limited.kraft_sum() == 1 and limited.cost(freqs) > free.cost(freqs)
    small = np.array([1, 1, 2, 4, 8, 16])                      # brute force at a binding limit
    assert CanonicalCode.from_frequencies(small, 3).cost(small) == brute_force_cost(small, 3)


@FAST
@given(frequency_arrays)
def test_canonical_assignment(freqs):
    code = CanonicalCode.from_frequencies(freqs)
    used = np.flatnonzero(code.lengths)
    order = used[np.lexsort((used, code.lengths[used]))]
    assert (code.indirection == order).all()                  # (length, symbol) order
    lengths, words = code.lengths[order], code.codewords[order]
    for rank in range(1, len(order)):
        # Consecutive within a length; across lengths: the previous code + 1, shifted.
        expected = (words[rank - 1] + 1) << int(lengths[rank] - lengths[rank - 1])
        assert words[rank] == expected
    assert words[:1].tolist() in ([], [0])
    for length in range(1, code.max_length + 1):
        of_length = order[lengths == length]
        assert code.counts[length] == len(of_length)
        assert code.first_index[length] == np.count_nonzero(lengths < length)
        if len(of_length):
            assert code.first_code[length] == code.codewords[of_length[0]]
    left_aligned = sorted((int(w) << (32 - int(n)), int(n)) for w, n in zip(words, lengths))
    for (a, n), (b, _) in itertools.pairwise(left_aligned):
        assert b >= a + (1 << (32 - n))                         # prefix-free


def test_edge_cases():
    single = CanonicalCode.from_frequencies(np.eye(512, dtype=np.int64)[300] * 5)
    assert single.lengths[300] == 1 and np.count_nonzero(single.lengths) == 1
    assert single.indirection.tolist() == [300]
    empty = CanonicalCode.from_frequencies(np.zeros(512, dtype=np.int64))
    assert empty.max_length == 0 and empty.kraft_sum() == 0
    flat = CanonicalCode.from_frequencies(np.ones(512, dtype=np.int64), max_length=9)
    assert (flat.lengths == 9).all() and (flat.codewords == np.arange(512)).all()
    ties = CanonicalCode.from_frequencies(np.array([3, 3, 3]))
    assert ties.lengths.tolist() == [1, 2, 2]                 # the smaller symbol is shorter
    with pytest.raises(ValueError, match="do not fit"):
        CanonicalCode.from_frequencies(np.ones(512, dtype=np.int64), max_length=8)
    with pytest.raises(ValueError, match="negative"):
        CanonicalCode.from_frequencies(np.array([1, -1]))
    with pytest.raises(ValueError, match="over-subscribed"):
        CanonicalCode(np.array([1, 1, 1]))


@FAST
@given(frequency_arrays, st.integers(0, 2**32 - 1))
def test_code_encode_decode_round_trip(freqs, seed):
    code = CanonicalCode.from_frequencies(freqs)
    used = np.flatnonzero(freqs)
    symbols = np.random.default_rng(seed).choice(used, size=300)
    bits = code.encode(symbols)
    assert len(bits) == code.lengths[symbols].sum()
    assert (code.decode(bits, len(symbols)) == symbols).all()


# --- blobs: round trip ------------------------------------------------------------------------

@FAST
@given(frequency_arrays, st.lists(st.integers(0, 5), min_size=0, max_size=3),
       st.integers(0, 2**32 - 1), st.integers(1, 20))
def test_compress_kernels_round_trip(freqs, leading, seed, block_channels):
    rng = np.random.default_rng(seed)
    shape = tuple(leading) + (3, 3)
    count = int(np.prod(leading))
    symbols = rng.choice(512, size=count, p=freqs / freqs.sum())
    kernels = symbols_to_kernels(symbols).reshape(shape)
    blob = compress_kernels(kernels, block_channels=block_channels)
    back = decompress_kernels(blob)
    assert back.dtype == np.uint8 and back.shape == kernels.shape
    assert (back == kernels).all()


@pytest.mark.parametrize("tables, expected", [
    ("per-layer", [0, 1, 2]), ("shared", [0, 0, 0]), ([5, 2, 5], [0, 1, 0]), ("auto", None)])
def test_multi_layer_round_trip_and_table_choice(tables, expected):
    rng = np.random.default_rng(1)
    layers = {"a": symbols_to_kernels(rng.integers(0, 40, (32, 8))),
              "b": symbols_to_kernels(rng.integers(0, 512, (64, 32))),
              "c": symbols_to_kernels(rng.integers(0, 3, (5,)))}
    model = compress_model(layers, tables=tables)
    decoded = CompressedModel.from_bytes(model.to_bytes()).decode()
    assert list(decoded) == list(layers)
    assert all((decoded[name] == layers[name]).all() for name in layers)
    table_ids = [layer.table for layer in model.layers]
    assert table_ids == (expected or table_ids) and set(table_ids) == set(range(len(model.tables)))


def test_auto_tables_are_never_worse(net):
    layers = dict(list(fracbnn_conv_kernels(net).items())[:8])
    sizes = {strategy: compress_model(layers, tables=strategy).size_bits()
             for strategy in ("per-layer", "shared", "auto")}
    cost = {s: v["payload"] + v["tables"] for s, v in sizes.items()}
    assert cost["auto"] <= min(cost["per-layer"], cost["shared"])


def test_blocks_decode_independently():
    """Each block can be decoded alone from its offset (what a weight cache relies on)."""
    layers = bnn_pynq_cnv_kernels()
    model = compress_model(layers, tables="auto")
    bits = model.payload_bit_array()
    starts, ends, counts, owner = model.blocks()
    assert len(starts) == sum((k.shape[0] + 15) // 16 for k in layers.values())
    for block in [0, 5, len(starts) // 2, len(starts) - 1]:
        layer = model.layers[owner[block]]
        code = model.tables[layer.table]
        symbols = code.decode(bits[starts[block]:ends[block]], counts[block])
        number = block - np.flatnonzero(owner == owner[block])[0]
        kernels = layers[layer.name].reshape(-1, 3, 3)
        first = number * layer.block_kernels
        assert (symbols_to_kernels(symbols) == kernels[first:first + counts[block]]).all()


def test_fracbnn_helper_and_memory_words():
    model = compress_fracbnn()
    assert [layer.name for layer in model.layers] == ["conv1"] + [c.name for c in PG_CONVS]
    assert len(model.blocks()[0]) == 1 + 6 * 1 + 6 * 2 + 6 * 4     # 16 output channels each
    bits = model.payload_bit_array()
    for word_bits in (8, 64):
        assert (unpack_bits(model.payload_words(word_bits), len(bits)) == bits).all()


# --- the real models --------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["fracbnn", "bnn_pynq"])
def real_layers(request):
    from fracbnn_golden import FracBNN

    if request.param == "fracbnn":
        return fracbnn_conv_kernels(FracBNN.default())
    return bnn_pynq_cnv_kernels()


def test_real_model_round_trip_and_ratio(real_layers):
    model = compress_model(real_layers)
    blob = model.to_bytes()
    decoded = CompressedModel.from_bytes(blob).decode()
    assert all((decoded[n] == k).all() and decoded[n].shape == k.shape
               for n, k in real_layers.items())
    hists = [histogram(kernel_symbols(k)) for k in real_layers.values()]
    kernels = sum(int(h.sum()) for h in hists)
    raw = 9 * kernels
    group_entropy = 0.0
    for table in range(len(model.tables)):
        pooled = sum(h for h, layer in zip(hists, model.layers) if layer.table == table)
        group_entropy += entropy_bits(pooled) * pooled.sum()
    size = model.size_bits()
    assert size["total"] == 8 * len(blob)
    # A Huffman code is never below the entropy of its histogram and, on these flat
    # distributions, within 1 %: the ratio follows from the entropy, not a stored number.
    assert group_entropy <= size["payload"] <= 1.01 * group_entropy
    assert (size["tables"] + size["offsets"]) < 0.02 * raw
    assert 1.03 < raw / size["payload"] < 1.15


# --- blobs: corruption ------------------------------------------------------------------------

def small_blob():
    rng = np.random.default_rng(7)
    kernels = symbols_to_kernels(rng.choice([0, 511, 7, 448, 56, 300], (6, 4)))
    return kernels, compress_kernels(kernels, block_channels=2)


def reseal(blob):
    """Recompute both CRCs (layout: huffman module docstring), to reach the later checks."""
    payload_bits = struct.unpack_from("<I", blob, 9)[0]
    metadata_end = len(blob) - (payload_bits + 7) // 8 - 4
    blob = bytearray(blob)
    struct.pack_into("<I", blob, 13, zlib.crc32(bytes(blob[metadata_end + 4:])))
    struct.pack_into("<I", blob, metadata_end, zlib.crc32(bytes(blob[:metadata_end])))
    return bytes(blob)


def test_every_truncation_raises():
    _, blob = small_blob()
    for cut in range(len(blob)):
        with pytest.raises(CompressedFormatError, match="truncated"):
            decompress_kernels(blob[:cut])
    big = compress_model(bnn_pynq_cnv_kernels()).to_bytes()
    for cut in np.linspace(0, len(big) - 1, 60).astype(int):
        with pytest.raises(CompressedFormatError, match="truncated"):
            CompressedModel.from_bytes(big[:cut])


def test_every_single_bit_flip_raises():
    kernels, blob = small_blob()
    assert (decompress_kernels(blob) == kernels).all()
    for bit in range(8 * len(blob)):
        corrupt = bytearray(blob)
        corrupt[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(CompressedFormatError):
            decompress_kernels(bytes(corrupt))


@FAST
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=4))
def test_corrupt_metadata_with_valid_crcs_never_escapes(edits):
    """Corrupt table/layer records, then fix the CRCs: the reader must raise
    CompressedFormatError or decode kernels of the stated shape, never fail otherwise."""
    _, blob = small_blob()
    metadata_end = len(blob) - (struct.unpack_from("<I", blob, 9)[0] + 7) // 8 - 4
    corrupt = bytearray(blob)
    for position, mask in edits:
        corrupt[17 + position % (metadata_end - 17)] ^= mask
    try:
        model = CompressedModel.from_bytes(reseal(bytes(corrupt)))
        decoded = model.decode()
    except CompressedFormatError:
        return
    assert all(decoded[layer.name].shape == layer.shape for layer in model.layers)


@pytest.mark.parametrize("edit, message", [
    (lambda b: b"XXXX" + b[4:], "bad magic"),
    (lambda b: b[:4] + b"\x03" + b[5:], "unsupported format version 3"),
    (lambda b: b + b"\x00", "trailing data"),
    (lambda b: b[:-1] + bytes([b[-1] ^ 0x01]), "payload CRC32"),
    (lambda b: b[:20] + bytes([b[20] ^ 0x10]) + b[21:], "metadata CRC32|table 0"),
])
def test_corrupt_blob_messages(edit, message):
    _, blob = small_blob()
    with pytest.raises(CompressedFormatError, match=message):
        decompress_kernels(edit(blob))


def test_over_long_and_invalid_tables():
    kernels = symbols_to_kernels(np.arange(150))
    blob = bytearray(compress_kernels(kernels))
    longest = blob[18]
    assert blob[17] == 1 and longest == 8                    # list form (table at byte 17)
    struct.pack_into("<H", blob, 19 + 2 * (longest - 1), 600)   # 600 codes of length 8
    with pytest.raises(CompressedFormatError, match="over-long table"):
        decompress_kernels(bytes(blob))
    blob = bytearray(compress_kernels(kernels))
    blob[18] = 40
    with pytest.raises(CompressedFormatError, match="exceeds the maximum"):
        decompress_kernels(bytes(blob))
    blob = bytearray(compress_kernels(symbols_to_kernels(np.arange(512))))
    assert blob[17] == 0 and blob[18] == 9                   # lengths form, 4-bit fields
    blob[19] = 0x11                                          # symbols 0, 1 get 1-bit codes
    with pytest.raises(CompressedFormatError, match="over-subscribed"):
        decompress_kernels(bytes(blob))


def test_wrong_kernel_count_and_offsets():
    kernels, blob = small_blob()
    shape_at = blob.index(struct.pack("<B4I", 4, 6, 4, 3, 3))
    wrong = bytearray(blob)
    struct.pack_into("<I", wrong, shape_at + 1, 7)         # 7 rows, but 3 blocks of 2 rows
    with pytest.raises(CompressedFormatError, match="wrong kernel count"):
        decompress_kernels(reseal(bytes(wrong)))
    wrong = bytearray(blob)
    struct.pack_into("<I", wrong, shape_at + 1, 5)         # 5 rows: the last block is short
    with pytest.raises(CompressedFormatError, match="end at bit|too few"):
        decompress_kernels(reseal(bytes(wrong)))
    model = CompressedModel.from_bytes(blob)
    layer = model.layers[0]
    for offsets in [(0, 5, 3), (1,) + layer.block_offsets[1:],
                    layer.block_offsets[:2] + (model.payload_bits + 3,)]:
        with pytest.raises(CompressedFormatError, match="offsets out of range"):
            CompressedModel(model.tables, (CompressedLayer(layer.name, layer.shape, 0,
                                                           layer.block_kernels, offsets),),
                            model.payload, model.payload_bits)


def test_invalid_code_is_reported():
    """A single-symbol table codes it as '0': a '1' bit is no codeword."""
    kernels = symbols_to_kernels(np.full((4, 2), 9))
    model = compress_model({"k": kernels}, block_channels=2)
    assert model.payload_bits == 8 and model.payload == b"\x00"
    bad = CompressedModel(model.tables, model.layers, b"\x04", 8)
    with pytest.raises(CompressedFormatError, match="invalid code at payload bit 2"):
        bad.decode()
    blob = bytearray(model.to_bytes())
    blob[-1] = 0x04
    with pytest.raises(CompressedFormatError, match="invalid code"):
        decompress_kernels(reseal(bytes(blob)))


def test_flip_that_still_decodes_is_caught_by_crc():
    kernels = symbols_to_kernels(np.arange(512).reshape(16, 32))   # every code 9 bits long
    blob = bytearray(compress_kernels(kernels))
    blob[-10] ^= 0x20
    corrupt = CompressedModel.from_bytes(reseal(bytes(blob)))      # decodes...
    assert not (corrupt.decode()["kernels"] == kernels).all()      # ...to the wrong kernels
    with pytest.raises(CompressedFormatError, match="payload CRC32 mismatch"):
        decompress_kernels(bytes(blob))


@pytest.mark.parametrize("lanes", [2, 3, 8])
def test_lanes_round_trip_and_interleave(lanes):
    rng = np.random.default_rng(lanes)
    kernels = {"a": rng.integers(0, 2, (8, 5, 3, 3), dtype=np.uint8),
               "b": (rng.random((6, 7, 3, 3)) < 0.2).astype(np.uint8)}
    plain = compress_model(kernels, block_channels=3)
    model = compress_model(kernels, block_channels=3, lanes=lanes)
    # Lanes move codewords, not bits: the payload is as long; only the offsets grow.
    assert model.payload_bits == plain.payload_bits
    assert model.to_bytes()[4] == 2 and plain.to_bytes()[4] == 1
    assert CompressedModel.from_bytes(model.to_bytes()) == model
    decoded = model.decode()
    assert all(np.array_equal(decoded[name], kernels[name]) for name in kernels)
    # Lane l of a block holds the block's kernels l, l + lanes, ... in order.
    layer = model.layers[0]
    starts, ends, counts, _ = model.blocks()
    code = model.tables[layer.table]
    bits = model.payload_bit_array()
    symbols = kernel_symbols(kernels["a"]).ravel()[:layer.block_kernels]
    for lane in range(lanes):
        got = code.decode(bits[starts[lane]:ends[lane]], counts[lane])
        assert np.array_equal(got, symbols[lane::lanes])


def test_lanes_need_a_kernel_each():
    with pytest.raises(ValueError, match="fewer kernels than lanes"):
        compress_model({"a": np.zeros((2, 1, 3, 3), dtype=np.uint8)}, block_channels=1, lanes=2)
