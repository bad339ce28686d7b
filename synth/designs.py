"""The designs ``python -m synth`` synthesises (and ``python -m benchmarks`` reports).

The compressor trees and XNOR-popcount arrays at a few sizes, a plain-adder baseline, every
datapath unit as :class:`rtl.builder.UnitBuilder` builds it for the accelerator with the bundled
model, the weight cache's Huffman decoder, and the whole accelerator in its default
configuration.
"""

from functools import cache, partial

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fracbnn_golden import FracBNN
from rtl.accelerator import FracBNNAccelerator
from rtl.builder import UnitBuilder, unit_config
from rtl.popcount import Popcount
from rtl.schedule import PLANES, AcceleratorConfig
from rtl.xnor_popcount import XnorPopcount, XnorPopcountArray

from .yosys import Design

__all__ = ["DESIGNS", "NaiveXnorPopcount", "accelerator", "bundled_model", "unit", "unit_design"]


class NaiveXnorPopcount(wiring.Component):
    """The baseline: ``popcount(a XOR w)`` written as a balanced tree of ``+`` over the bits,
    left for Yosys to map, registered once."""

    def __init__(self, width):
        self.width = width
        super().__init__({
            "a": In(width),
            "w": In(width),
            "o": Out(range(width + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        terms = list(self.a ^ self.w)
        while len(terms) > 1:
            terms = [sum(terms[n:n + 2]) for n in range(0, len(terms), 2)]
        m.d.sync += self.o.eq(terms[0])
        return m


@cache
def bundled_model():
    """The bundled CIFAR-10 model (loaded once)."""
    return FracBNN.default()


def unit(name, **keys):
    """Unit ``name`` of :data:`rtl.builder.UNITS` with the bundled model, at the configuration
    keys ``keys`` (:func:`rtl.builder.unit_config`)."""
    return UnitBuilder(bundled_model(), unit_config(name, **keys)).build(name)


def unit_design(design_name, unit_name, input_bits=None, **keys):
    """The :class:`synth.yosys.Design` of :func:`unit` ``unit_name`` at ``keys``."""
    return Design(design_name, partial(unit, unit_name), keys, input_bits)


def accelerator(**keys):
    """The whole accelerator with the bundled model at the configuration ``keys``."""
    return FracBNNAccelerator(bundled_model(), AcceleratorConfig(**keys))


_DEFAULT = AcceleratorConfig()
# XNOR input bits per cycle of one of the conv engine's arrays (one per bit plane).
_ARRAY_BITS = _DEFAULT.lanes // PLANES
_LANES = {"pe": _DEFAULT.pe}

DESIGNS = [
    Design("popcount_576", Popcount, {"width": 576, "stages": 3}, 576),
    Design("xnor_popcount_576", XnorPopcount, {"width": 576}, 576),
    Design("xnor_popcount_576_plain_adders", NaiveXnorPopcount, {"width": 576}, 576),
    Design("array_pe1_simd576", XnorPopcountArray,
           {"pe": 1, "simd": 576, "max_beats": 64}, 576),
    Design("array_pe16_simd64", XnorPopcountArray,
           {"pe": 16, "simd": 64, "max_beats": 9 * 4}, 16 * 64),
    Design("array_pe32_simd32", XnorPopcountArray,
           {"pe": 32, "simd": 32, "max_beats": 9 * 8}, 32 * 32),
    # The conv engine's array as the accelerator builds it (16 PEs, 9 taps x 16 channels).
    unit_design("array_pe16_simd144_g9", "xnor_popcount_array", _ARRAY_BITS,
                pe=_DEFAULT.pe, simd_channels=_DEFAULT.simd_channels),
    # The other datapath units at 16 lanes, with the bundled model's parameter tables.
    unit_design("quantizer_l16", "activation_quantizer", **_LANES),
    unit_design("shortcut_l16", "shortcut_pool", **_LANES),
    unit_design("gate_l16", "precision_gate", **_LANES),
    unit_design("merge_l16", "merge_unit", **_LANES),
    unit_design("thermometer_encoder", "thermometer_encoder"),
    unit_design("thermometer_conv", "thermometer_conv"),
    unit_design("input_bn", "input_batch_norm"),
    unit_design("head_l16", "head", **_LANES),
    # The feature-map memories at the accelerator's sizes (their address arithmetic in front
    # of the block RAMs), the 2-bit activations' and the FM codes'.
    unit_design("activation_buffer", "activation_buffer", pe=_DEFAULT.pe,
                simd_channels=_DEFAULT.simd_channels),
    unit_design("feature_map_buffer", "feature_map_buffer", **_LANES),
    # The weight cache's Huffman decoder (the model's code tables), 1 and 4 symbols a cycle.
    unit_design("huffman_decoder_n1", "huffman_decoder", pe=_DEFAULT.pe,
                decoder_symbols_per_cycle=1),
    unit_design("huffman_decoder_n4", "huffman_decoder", pe=_DEFAULT.pe,
                decoder_symbols_per_cycle=4),
    # The whole accelerator in its default configuration (both bit planes' arrays).
    Design("accelerator", accelerator,
           {"pe": _DEFAULT.pe, "simd_channels": _DEFAULT.simd_channels},
           _DEFAULT.lanes),
]
