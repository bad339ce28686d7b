# amaranth: UnusedElaboratable=no
"""The datapath units and the feature-map memories reject bad parameters at construction with
clear errors (pure Python)."""

import numpy as np
import pytest

from rtl.fm_memory import FeatureMapMemory
from rtl.gate import PrecisionGate
from rtl.head import Head, head_latency
from rtl.merge import MergeUnit
from rtl.quantizer import ActivationQuantizer
from rtl.shortcut import ShortcutPool
from rtl.thermometer import InputBatchNorm, ThermometerConv, ThermometerEncoder
from rtl.window import WindowMemory

GATE_OK = [[0, 1], [-2048, 2047]]
MERGE_OK = np.zeros((2, 2, 7), dtype=np.int16)
CONV_OK = np.zeros((2, 64, 3, 3), dtype=np.uint8)
HEAD_W, HEAD_B = np.zeros((3, 8), dtype=np.int16), np.zeros(3, dtype=np.int16)


@pytest.mark.parametrize("build, error, words", [
    # Lane and width counts: positive integers (not bool, float or str).
    (lambda: ActivationQuantizer(0), ValueError, "ActivationQuantizer parameter lanes"),
    (lambda: ActivationQuantizer(2.0), TypeError, "ActivationQuantizer parameter lanes"),
    (lambda: ActivationQuantizer(True), TypeError, "lanes must be an integer"),
    (lambda: ShortcutPool(-1), ValueError, "ShortcutPool parameter lanes must be at least 1"),
    (lambda: ShortcutPool("4"), TypeError, "ShortcutPool parameter lanes"),
    (lambda: ThermometerEncoder(0), ValueError, "ThermometerEncoder parameter colours"),
    (lambda: ThermometerEncoder(None), TypeError, "ThermometerEncoder parameter colours"),
    # Precision gate: thresholds [rows >= 1, lanes] of integer WT codes.
    (lambda: PrecisionGate(0, GATE_OK), ValueError, "PrecisionGate parameter lanes"),
    (lambda: PrecisionGate(2, GATE_OK, sum_width=1), ValueError, "sum_width must be at least 2"),
    (lambda: PrecisionGate(2, GATE_OK, sum_width=8.0), TypeError, "sum_width"),
    (lambda: PrecisionGate(2, [0, 1]), ValueError, r"shape \[rows >= 1, 2\], not \[2\]"),
    (lambda: PrecisionGate(2, [[0, 1, 2]]), ValueError, r"not \[1, 3\]"),
    (lambda: PrecisionGate(2, np.zeros((0, 2), int)), ValueError, r"not \[0, 2\]"),
    (lambda: PrecisionGate(2, None), ValueError, "thresholds must have shape"),
    (lambda: PrecisionGate(2, [[0, 2048]]), ValueError, r"WT codes in \[-2048, 2047\]"),
    (lambda: PrecisionGate(2, [[-2049, 0]]), ValueError, "WT codes"),
    (lambda: PrecisionGate(2, [[0.5, -0.5]]), TypeError, "thresholds must be integer WT codes"),
    (lambda: PrecisionGate(2, [[True, False]]), TypeError, "integer WT codes"),
    (lambda: PrecisionGate(2, [["1", "2"]]), TypeError, "integer WT codes"),
    (lambda: PrecisionGate(2, GATE_OK, pixels=0), ValueError, "PrecisionGate parameter pixels"),
    (lambda: PrecisionGate(2, GATE_OK, pixels=2.0), TypeError, "pixels must be an integer"),
    # Merge: params [rows >= 1, lanes, 7] of integer WT codes.
    (lambda: MergeUnit(0, MERGE_OK), ValueError, "MergeUnit parameter lanes"),
    (lambda: MergeUnit(2, MERGE_OK, sum_width=0), ValueError, "MergeUnit parameter sum_width"),
    (lambda: MergeUnit(2, MERGE_OK[:, :, :6]), ValueError,
     r"shape \[rows, 2, 7\], not \[2, 2, 6\]"),
    (lambda: MergeUnit(3, MERGE_OK), ValueError, r"shape \[rows, 3, 7\]"),
    (lambda: MergeUnit(2, MERGE_OK[0]), ValueError, "MergeUnit params must have shape"),
    (lambda: MergeUnit(2, MERGE_OK[:0]), ValueError, "at least one row"),
    (lambda: MergeUnit(2, MERGE_OK + 2048), ValueError, "MergeUnit params must be WT codes in"),
    (lambda: MergeUnit(2, MERGE_OK - 2049), ValueError, "WT codes in"),
    (lambda: MergeUnit(2, MERGE_OK + 0.5), TypeError, "MergeUnit params must be integer WT codes"),
    (lambda: MergeUnit(2, MERGE_OK, pixels=0), ValueError, "MergeUnit parameter pixels"),
    (lambda: MergeUnit(2, MERGE_OK, pixels="2"), TypeError, "MergeUnit parameter pixels"),
    (lambda: MergeUnit(2, MERGE_OK, pixels=True), TypeError, "pixels must be an integer"),
    # Thermometer conv: 0/1 weights [out >= 1, colours * 32, 3, 3].
    (lambda: ThermometerConv(CONV_OK[0]), ValueError, r"\[out, colours \* 32, 3, 3\], not"),
    (lambda: ThermometerConv(CONV_OK[:, :63]), ValueError, r"not \[2, 63, 3, 3\]"),
    (lambda: ThermometerConv(CONV_OK[:, :0]), ValueError, "ThermometerConv weight must have shape"),
    (lambda: ThermometerConv(CONV_OK[:0]), ValueError, r"not \[0, 64, 3, 3\]"),
    (lambda: ThermometerConv(CONV_OK[:, :, :2]), ValueError, r"not \[2, 64, 2, 3\]"),
    (lambda: ThermometerConv(CONV_OK + 2), ValueError, "must hold 0/1 bits"),
    (lambda: ThermometerConv(CONV_OK - 0.5), ValueError, "0/1 bits"),
    (lambda: ThermometerConv(None), ValueError, "ThermometerConv weight must have shape"),
    # Input BN: scale and bias vectors of one length, integer WT codes.
    (lambda: InputBatchNorm([1, 2], [1]), ValueError,
     r"vectors of one length, not \[2\] and \[1\]"),
    (lambda: InputBatchNorm([], []), ValueError, "vectors of one length"),
    (lambda: InputBatchNorm(3, 4), ValueError, "vectors of one length"),
    (lambda: InputBatchNorm([[1]], [[1]]), ValueError, "vectors of one length"),
    (lambda: InputBatchNorm([2048], [0]), ValueError, r"scale must be WT codes in \[-2048, 2047\]"),
    (lambda: InputBatchNorm([0], [-2049]), ValueError, "bias must be WT codes"),
    (lambda: InputBatchNorm([0.5], [1]), TypeError, "scale must be integer WT codes"),
    (lambda: InputBatchNorm([1], [1.0]), TypeError, "bias must be integer WT codes"),
    (lambda: InputBatchNorm([1], [1], sum_width=1), ValueError, "sum_width must be at least 2"),
    # Head: weight [classes, channels], bias [classes] of integer WT codes; lanes divide the
    # channels, positions a power of two, pixels divide the positions.
    (lambda: Head(HEAD_W[0], HEAD_B), ValueError, r"\[classes, channels\] and bias \[classes\]"),
    (lambda: Head(HEAD_W, HEAD_B[:2]), ValueError, r"not \[3, 8\] and \[2\]"),
    (lambda: Head(HEAD_W[:0], HEAD_B[:0]), ValueError, "Head weight must be"),
    (lambda: Head(HEAD_W + 2048, HEAD_B, lanes=4), ValueError, r"WT codes in \[-2048, 2047\]"),
    (lambda: Head(HEAD_W, HEAD_B - 2049, lanes=4), ValueError, "WT codes in"),
    (lambda: Head(HEAD_W + 0.5, HEAD_B, lanes=4), TypeError, "Head weight must be integer"),
    (lambda: Head(HEAD_W, HEAD_B * 1.0, lanes=4), TypeError, "Head bias must be integer"),
    (lambda: Head(HEAD_W, HEAD_B, lanes=3), ValueError, "lanes=3 must divide the 8 channels"),
    (lambda: Head(HEAD_W, HEAD_B, lanes=16), ValueError, "lanes=16 must divide"),
    (lambda: Head(HEAD_W, HEAD_B, lanes=0), ValueError, "Head parameter lanes"),
    (lambda: Head(HEAD_W, HEAD_B, lanes=4, positions=48), ValueError, "power of two"),
    (lambda: Head(HEAD_W, HEAD_B, lanes=4, positions=0), ValueError, "Head parameter positions"),
    (lambda: Head(HEAD_W, HEAD_B, lanes=4, positions=4.0), TypeError, "positions"),
    (lambda: Head(HEAD_W, HEAD_B, lanes=4, pixels=0), ValueError, "Head parameter pixels"),
    (lambda: Head(HEAD_W, HEAD_B, lanes=4, pixels=2.0), TypeError, "Head parameter pixels"),
    (lambda: Head(HEAD_W, HEAD_B, lanes=4, positions=4, pixels=3), ValueError,
     "pixels=3 must divide the 4 positions"),
    (lambda: Head(HEAD_W, HEAD_B, lanes=4, positions=2, pixels=4), ValueError,
     "pixels=4 must divide the 2 positions"),
    # Memories: pixels per write (and windows per read) a positive integer; the feature-map
    # memory's two pixels at most fill a 2x2 block's row.
    (lambda: WindowMemory(8, [(6, 1)], pixels=0), ValueError,
     "WindowMemory parameter pixels must be at least 1, not 0"),
    (lambda: WindowMemory(8, [(6, 1)], pixels=2.0), TypeError,
     "WindowMemory parameter pixels must be an integer"),
    (lambda: WindowMemory(8, [(6, 1)], pixels=True), TypeError, "pixels must be an integer"),
    (lambda: FeatureMapMemory(8, [(4, 1)], pixels=3), ValueError,
     "FeatureMapMemory parameter pixels must be 1 or 2, not 3"),
    (lambda: FeatureMapMemory(8, [(4, 1)], pixels=0), ValueError,
     "FeatureMapMemory parameter pixels must be at least 1, not 0"),
    (lambda: FeatureMapMemory(8, [(4, 1)], pixels="2"), TypeError,
     "FeatureMapMemory parameter pixels must be an integer"),
])
def test_bad_parameters_raise(build, error, words):
    with pytest.raises(error, match=words):
        build()


def test_good_parameters_build():
    """The smallest legal configurations construct, with the documented latencies."""
    assert ActivationQuantizer(1).latency == 1
    assert ShortcutPool(1).latency == 2
    assert ThermometerEncoder(1).latency == 1
    assert PrecisionGate(2, GATE_OK).latency == 2
    assert PrecisionGate(1, np.array([[-2048]], dtype=np.int16), sum_width=2).thresholds[0, 0] \
        == -12
    assert MergeUnit(2, MERGE_OK).latency == 14
    conv = ThermometerConv(CONV_OK.astype(bool))
    assert (conv.out_channels, conv.colours, conv.latency) == (2, 2, 4)
    assert conv.sum_shape.width == 11          # -576 .. 576
    assert InputBatchNorm(np.int16([2047]), np.int16([-2048])).latency == 2
    head = Head(HEAD_W, HEAD_B, lanes=8, positions=1)
    assert (head.classes, head.channels, head.latency) == (3, 8, 12)
    # Several pixels per transfer: the same latencies.
    assert PrecisionGate(2, GATE_OK, pixels=3).latency == 2
    assert MergeUnit(2, MERGE_OK, pixels=3).latency == 14
    # Any number of windows per read; the memories' latencies do not depend on it.
    window = WindowMemory(8, [(3, 1)], pixels=3)
    assert (window.latency, window.read.data.shape().length, len(window.write.en)) == (4, 3, 3)
    assert FeatureMapMemory(8, [(2, 1)], pixels=2).latency == 4


@pytest.mark.parametrize("lanes, positions, pixels, latency", [
    (8, 1, 1, 12), (4, 4, 1, 12), (2, 16, 2, 12),
    # The last transfer's later positions are added while channels 0 .. channels - lanes - 1
    # are read; past those the linear layer starts later.
    (4, 4, 4, 12), (2, 16, 8, 13), (4, 8, 8, 15), (8, 2, 2, 13), (8, 8, 8, 19)])
def test_head_latency(lanes, positions, pixels, latency):
    """The head's latency (8 channels): ``channels + 4``, more only where the positions a
    transfer holds beyond its first outnumber the channels before the last group."""
    head = Head(HEAD_W, HEAD_B, lanes=lanes, positions=positions, pixels=pixels)
    assert head.latency == head_latency(8, pixels, lanes) == latency
