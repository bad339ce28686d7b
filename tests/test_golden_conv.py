"""Packed binary convolution and bit packing against independent references."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fracbnn_golden.bitops import pack_bits, unpack_bits, valid_mask, xnor_dot
from fracbnn_golden.conv import binary_conv2d, thermometer_bits, thermometer_counts


def float_conv(act, weight, stride):
    """Plain ±1 float cross-correlation with zero padding: an independent reference."""
    a = 2.0 * act - 1.0
    w = 2.0 * weight - 1.0
    n, c, h, wd = a.shape
    padded = np.zeros((n, c, h + 2, wd + 2))
    padded[:, :, 1:-1, 1:-1] = a
    out = np.zeros((n, weight.shape[0], h, wd))
    for ky in range(3):
        for kx in range(3):
            out += np.einsum("nchw,oc->nohw", padded[:, :, ky:ky + h, kx:kx + wd], w[:, :, ky, kx])
    return out[:, :, ::stride, ::stride].astype(np.int64)


@pytest.mark.parametrize("channels", [1, 3, 17, 64, 96])
@pytest.mark.parametrize("stride", [1, 2])
def test_conv_matches_float_conv_on_odd_shapes(channels, stride):
    rng = np.random.default_rng(channels * 10 + stride)
    for height, width in [(1, 1), (2, 3), (7, 5), (33, 8)]:
        act = rng.integers(0, 2, (2, channels, height, width), dtype=np.uint8)
        weight = rng.integers(0, 2, (5, channels, 3, 3), dtype=np.uint8)
        np.testing.assert_array_equal(binary_conv2d(act, weight, stride),
                                      float_conv(act, weight, stride))


@settings(max_examples=40, deadline=None)
@given(channels=st.integers(1, 130), height=st.integers(1, 33), width=st.integers(1, 33),
       out_channels=st.integers(1, 4), stride=st.sampled_from([1, 2]), seed=st.integers(0, 2**32))
def test_conv_matches_float_conv_random(channels, height, width, out_channels, stride, seed):
    rng = np.random.default_rng(seed)
    act = rng.integers(0, 2, (1, channels, height, width), dtype=np.uint8)
    weight = rng.integers(0, 2, (out_channels, channels, 3, 3), dtype=np.uint8)
    np.testing.assert_array_equal(binary_conv2d(act, weight, stride),
                                  float_conv(act, weight, stride))


def test_conv_rejects_bad_shapes():
    act = np.zeros((1, 4, 5, 5), np.uint8)
    with pytest.raises(ValueError, match="channels"):
        binary_conv2d(act, np.zeros((2, 3, 3, 3), np.uint8))
    with pytest.raises(ValueError, match="stride"):
        binary_conv2d(act, np.zeros((2, 4, 3, 3), np.uint8), stride=3)
    with pytest.raises(ValueError, match=r"\[O, C, 3, 3\]"):
        binary_conv2d(act, np.zeros((2, 4, 5, 5), np.uint8))


def test_thermometer_is_round_half_even_of_pixel_over_8():
    pixels = np.arange(256, dtype=np.uint8)
    expected = np.array([round(p / 8) for p in range(256)])    # Python's round is half-even
    np.testing.assert_array_equal(thermometer_counts(pixels), expected)
    assert thermometer_counts(np.array([4, 12, 20, 255], np.uint8)).tolist() == [0, 2, 2, 32]


def test_thermometer_bits_are_a_prefix_of_ones_per_colour():
    pixels = np.random.default_rng(1).integers(0, 256, (2, 3, 4, 4), dtype=np.uint8)
    bits = thermometer_bits(pixels).reshape(2, 3, 32, 4, 4)
    counts = thermometer_counts(pixels)
    np.testing.assert_array_equal(bits.sum(2), counts)
    assert (np.diff(bits.astype(int), axis=2) <= 0).all()       # ones first, then zeros


@pytest.mark.parametrize("word_bits", [8, 16, 32, 64])
def test_pack_unpack_round_trip_and_bit_order(word_bits):
    bits = np.random.default_rng(word_bits).integers(0, 2, (3, 131), dtype=np.uint8)
    words = pack_bits(bits, word_bits=word_bits)
    assert words.shape == (3, -(-131 // word_bits))
    np.testing.assert_array_equal(unpack_bits(words, 131), bits)
    # element i is bit i % word_bits of word i // word_bits
    for i in (0, 1, word_bits - 1, word_bits, 130):
        assert int(words[0, i // word_bits]) >> (i % word_bits) & 1 == bits[0, i]


def test_pack_along_another_axis():
    bits = np.random.default_rng(7).integers(0, 2, (70, 2, 3), dtype=np.uint8)
    words = pack_bits(bits, axis=0)
    assert words.shape == (2, 2, 3)
    np.testing.assert_array_equal(unpack_bits(words, 70, axis=0), bits)


@given(a=st.integers(0, 2**64 - 1), w=st.integers(0, 2**64 - 1), count=st.integers(0, 64))
def test_xnor_dot_is_the_signed_dot_product(a, w, count):
    av = [1 if a >> i & 1 else -1 for i in range(count)]
    wv = [1 if w >> i & 1 else -1 for i in range(count)]
    expected = sum(x * y for x, y in zip(av, wv))
    assert xnor_dot(np.uint64(a), np.uint64(w), count) == expected


def test_valid_mask_and_errors():
    assert valid_mask(0) == 0 and valid_mask(64) == 2**64 - 1 and valid_mask(5, 8) == 0b11111
    with pytest.raises(ValueError, match="above the word width"):
        valid_mask(17, 16)
    with pytest.raises(ValueError, match="word_bits"):
        pack_bits(np.zeros(4), word_bits=12)


@settings(max_examples=25, deadline=None)
@given(colours=st.integers(1, 3), height=st.integers(1, 9), width=st.integers(1, 9),
       out_channels=st.integers(1, 5), seed=st.integers(0, 2**32))
def test_prefix_sum_first_layer_equals_the_popcount_form(colours, height, width, out_channels,
                                                         seed):
    from fracbnn_golden.conv import thermometer_conv, thermometer_tables

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (2, colours, height, width), dtype=np.uint8)
    pixels[0, 0, 0, 0], pixels[-1, -1, -1, -1] = 0, 255          # counts 0 and 32
    weight = rng.integers(0, 2, (out_channels, colours * 32, 3, 3), dtype=np.uint8)
    tables = thermometer_tables(weight)
    assert tables.shape == (out_channels, colours, 9, 33)
    np.testing.assert_array_equal(thermometer_conv(thermometer_counts(pixels), tables),
                                  binary_conv2d(thermometer_bits(pixels), weight))


def test_prefix_sum_first_layer_on_the_public_vectors(net, public_vectors):
    from fracbnn_golden.conv import thermometer_conv, thermometer_tables

    tables = thermometer_tables(net.params["conv1.weight"])
    np.testing.assert_array_equal(thermometer_conv(public_vectors["counts"], tables),
                                  public_vectors["trace.conv1_acc"])
    # The table entries are 2 * P(n) - S: they start at -S and step by ±2.
    assert (np.abs(np.diff(tables, axis=-1)) == 2).all()
    with pytest.raises(ValueError, match="counts must be 0..32"):
        thermometer_conv(np.full((1, 3, 2, 2), 33), tables)


@given(msb=st.integers(-600, 600), threshold=st.integers(-2048, 2047))
def test_integer_gate_threshold_is_the_gate(msb, threshold):
    from fracbnn_golden.layers import gate_threshold, precision_gate

    gate = precision_gate(np.array([[msb]]), np.array([threshold]))
    assert bool(gate[0, 0]) == (msb > gate_threshold(threshold))
