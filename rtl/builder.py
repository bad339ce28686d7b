"""How the accelerator builds its units, in one place: from the model and an AcceleratorConfig.

:class:`UnitBuilder` constructs every unit of :class:`rtl.accelerator.FracBNNAccelerator` whose
parameters come from the model or the configuration, and computes the engine's timing (the
pipeline latencies, the weight cache's decoding times and the analytical cycle model) from the
same parameters without constructing anything. The accelerator, the synthesis designs
(:mod:`synth.designs`) and the design-space sweep (:mod:`benchmarks.lut_model`,
:mod:`benchmarks.cycle_model`) all build through it, so they build the same units.

:data:`UNITS` names the units, how many of each the accelerator holds and which configuration
keys their parameters depend on.
"""

from dataclasses import dataclass
from functools import cached_property

from fracbnn_golden.conv import TAPS
from fracbnn_golden.model import COLOURS, IMAGE_SIZE, STEM_CHANNELS

from .fixedpoint import FM_SHAPE, PG_SUM_SHAPE, STEM_SUM_SHAPE
from .fm_memory import FeatureMapMemory
from .gate import PrecisionGate
from .head import Head, head_latency
from .merge import MergeUnit
from .quantizer import ActivationQuantizer
from .schedule import (
    CONFIG_KEYS,
    PLANES,
    AcceleratorConfig,
    estimate_cycles,
    plan_layers,
    stem_ready_cycles,
)
from .shortcut import ShortcutPool
from .tables import (
    classifier,
    compressed_weights,
    gate_threshold_rows,
    merge_param_rows,
    stem_batch_norm,
    stem_weight,
)
from .thermometer import COUNT_SHAPE, InputBatchNorm, ThermometerConv, ThermometerEncoder
from .weight_cache import MAX_WEIGHT_BUFFERS, WeightCache, decoder_for, layer_decode_cycles
from .window import WindowMemory
from .xnor_popcount import XnorPopcountArray, array_latency

__all__ = ["BUFFERS", "UNITS", "UnitBuilder", "UnitSpec", "pipeline_latencies",
           "unit_config"]

# Feature-map buffers: two the PG layers alternate between (layer ``l > 0`` reads buffer
# ``l % 2`` and writes the other) and the stem's own, which layer 0 reads: the stem of the next
# image runs while the layers of the one before it use the other two.
BUFFERS = 3


@dataclass(frozen=True)
class UnitSpec:
    """A unit of the accelerator: how many ``instances`` it holds (times the pixels per beat
    for a unit of each pixel, ``per_pixel``) and the configuration keys
    (:data:`rtl.schedule.CONFIG_KEYS`) the unit's parameters depend on (``depends_on``; empty:
    the model's alone)."""

    instances: int
    depends_on: tuple
    per_pixel: bool = False

    def count(self, config):
        """The instances at ``config`` (an :class:`rtl.schedule.AcceleratorConfig`)."""
        return self.instances * (config.pixels_per_beat if self.per_pixel else 1)


# Every unit UnitBuilder builds, by the name of its method.
UNITS = {
    # The conv engine: an XNOR-popcount array per bit plane and output pixel of a beat, then
    # gate, merge, the activation quantiser and the classifier head, pe lanes per pixel (the
    # pixels share their parameter rows), and the stride-2 shortcut (one pixel per beat).
    "xnor_popcount_array": UnitSpec(PLANES, ("pe", "simd_channels"), per_pixel=True),
    "precision_gate": UnitSpec(1, ("pe", "pixels_per_beat")),
    "merge_unit": UnitSpec(1, ("pe", "pixels_per_beat")),
    "shortcut_pool": UnitSpec(1, ("pe",)),
    "activation_quantizer": UnitSpec(1, ("pe", "pixels_per_beat")),
    "head": UnitSpec(1, ("pe", "pixels_per_beat")),
    # The maps (BUFFERS): 2-bit activations written pe and read simd_channels at a time, FM
    # codes written pe at a time, a beat's pixels at once.
    "activation_buffer": UnitSpec(BUFFERS, ("pe", "simd_channels", "pixels_per_beat")),
    "feature_map_buffer": UnitSpec(BUFFERS, ("pe", "pixels_per_beat")),
    # Rows of pe x 9 x simd_channels weights, decoded N kernels per cycle; its Huffman decoder
    # (inside the cache, not a unit of the accelerator's own) depends on pe (the blocks) and N.
    "weight_cache": UnitSpec(1, ("pe", "simd_channels", "decoder_symbols_per_cycle")),
    "huffman_decoder": UnitSpec(0, ("pe", "decoder_symbols_per_cycle")),
    # The stem: the pixels' thermometer counts (double-buffered: an image loads while the one
    # before it is in its layers), the thermometer conv, its BN and its activation quantiser
    # (one pixel per cycle).
    "count_memory": UnitSpec(2, ()),
    "stem_quantizer": UnitSpec(1, ("pe",)),
    "thermometer_encoder": UnitSpec(1, ()),
    "thermometer_conv": UnitSpec(1, ()),
    "input_batch_norm": UnitSpec(1, ()),
}


def unit_config(name, **keys):
    """An :class:`rtl.schedule.AcceleratorConfig` to build unit ``name`` of :data:`UNITS` at
    the configuration ``keys`` (keyword arguments named by :data:`rtl.schedule.CONFIG_KEYS`).
    The keys not given take values every configuration accepts (``pe`` and ``simd_channels``
    16, one decoder symbol per cycle); a unit built with it does not depend on them unless they
    are in its ``depends_on``."""
    if name not in UNITS:
        raise ValueError(f"unknown unit {name!r}; the units are {', '.join(UNITS)}")
    unknown = sorted(set(keys) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"unknown configuration key(s) {', '.join(unknown)}; the keys are "
                         f"{', '.join(CONFIG_KEYS)}")
    neutral = {"pe": STEM_CHANNELS, "simd_channels": STEM_CHANNELS,
               "decoder_symbols_per_cycle": 1, "pixels_per_beat": 1}
    return AcceleratorConfig(**(neutral | keys))


# The stem's window of counts is picked from the count buffer it reads and registered (the
# buffer select drives every count bit: a path of its own in front of the thermometer conv).
COUNT_SELECT_LATENCY = 1


def pipeline_latencies(array_latency):
    """Cycles from a beat's issue to each point of the engine's pipeline, for arrays of
    ``array_latency``, and the stem's drain (``stem_drain``: until its last write has reached
    the memories layer 0 reads; the layers follow each other without one). ``stem_window``:
    the stem's window of counts at the thermometer conv's input."""
    window = WindowMemory.latency
    stem_window = window + COUNT_SELECT_LATENCY
    stem = stem_window + ThermometerConv.latency + InputBatchNorm.latency
    gate_at = window + array_latency
    merge_at = gate_at + PrecisionGate.latency
    layer = merge_at + MergeUnit.latency
    stem_drain = stem + ActivationQuantizer.latency + 1
    return {"window": window, "stem_window": stem_window, "stem": stem, "gate_at": gate_at,
            "merge_at": merge_at, "layer": layer, "stem_drain": stem_drain}


class UnitBuilder:
    """The units of the accelerator for ``net`` (a :class:`fracbnn_golden.FracBNN`) at
    ``config`` (an :class:`rtl.schedule.AcceleratorConfig`).

    Each unit method builds a new unit; the timing methods build nothing. ``compressed``
    optionally gives the PG kernels as :func:`rtl.tables.compressed_weights` compresses them
    for ``config.decoder_symbols_per_cycle`` (they are compressed on first use otherwise).
    """

    def __init__(self, net, config, *, compressed=None):
        self.net, self.config = net, config
        self.plans = plan_layers(config)
        if compressed is not None:
            self.compressed = compressed

    @cached_property
    def compressed(self):
        """The PG convs' kernels compressed for the weight cache."""
        return compressed_weights(self.net, self.config)

    def build(self, name):
        """The unit ``name`` of :data:`UNITS`."""
        if name not in UNITS:
            raise ValueError(f"unknown unit {name!r}; the units are {', '.join(UNITS)}")
        return getattr(self, name)()

    def instances(self, name):
        """As many units ``name`` as the accelerator holds (:data:`UNITS`)."""
        return [self.build(name) for _ in range(UNITS[name].count(self.config))]

    # ---- parameters -------------------------------------------------------------------------

    def array_params(self):
        """The arguments of the XNOR-popcount arrays: ``pe`` PEs of 9 taps x ``simd_channels``
        input bits in 9 groups (one per tap), accumulating a layer's input groups."""
        return {"pe": self.config.pe, "simd": TAPS * self.config.simd_channels,
                "max_beats": max(plan.groups_in for plan in self.plans), "groups": TAPS,
                "acc_width": PG_SUM_SHAPE.width}

    def buffer_maps(self, channels_per_word):
        """The (size, channel groups) of every feature map a buffer of ``channels_per_word``
        channels per word holds: the stem's output at 32x32, then each PG layer's output."""
        return [(IMAGE_SIZE, STEM_CHANNELS // channels_per_word)] + [
            (plan.out_size, plan.cout // channels_per_word) for plan in self.plans]

    # ---- the units --------------------------------------------------------------------------

    def xnor_popcount_array(self):
        return XnorPopcountArray(**self.array_params())

    def precision_gate(self):
        return PrecisionGate(self.config.pe, gate_threshold_rows(self.net, self.config),
                             PG_SUM_SHAPE.width, pixels=self.config.pixels_per_beat)

    def merge_unit(self):
        return MergeUnit(self.config.pe, merge_param_rows(self.net, self.config),
                         PG_SUM_SHAPE.width, pixels=self.config.pixels_per_beat)

    def shortcut_pool(self):
        return ShortcutPool(self.config.pe)

    def activation_quantizer(self):
        """The layers' quantiser: a beat's pixels at once."""
        return ActivationQuantizer(self.config.pe * self.config.pixels_per_beat)

    def stem_quantizer(self):
        return ActivationQuantizer(self.config.pe)

    def head(self):
        """The head, taking the last layer's pixels of a beat at once."""
        weight, bias = classifier(self.net)
        return Head(weight, bias, lanes=self.config.pe, positions=self._head_positions,
                    pixels=self.plans[-1].pixels)

    def activation_buffer(self):
        """The 2-bit activations in words of the wider of ``pe`` (the quantiser writes them)
        and ``simd_channels`` (the arrays read them), written and read by parts."""
        pe, simd = self.config.pe, self.config.simd_channels
        channels = max(pe, simd)
        return WindowMemory(2 * channels, self.buffer_maps(channels), read_width=2 * simd,
                            write_width=2 * pe, pixels=self.config.pixels_per_beat)

    def feature_map_buffer(self):
        pe = self.config.pe
        return FeatureMapMemory(FM_SHAPE.width * pe, self.buffer_maps(pe),
                                pixels=self.config.pixels_per_beat)

    def weight_cache(self):
        return WeightCache(self.compressed, self.plans, pe=self.config.pe,
                           simd_channels=self.config.simd_channels,
                           symbols_per_cycle=self.config.decoder_symbols_per_cycle,
                           buffers=self.weight_buffers())

    def huffman_decoder(self):
        """The weight cache's decoder, alone."""
        return decoder_for(self.compressed, self.config.decoder_symbols_per_cycle)

    def count_memory(self):
        """The thermometer counts of an image's pixels, read as 3x3 windows by the stem."""
        return WindowMemory(COLOURS * COUNT_SHAPE.width, [(IMAGE_SIZE, 1)])

    def thermometer_encoder(self):
        return ThermometerEncoder(COLOURS)

    def thermometer_conv(self):
        return ThermometerConv(stem_weight(self.net))

    def input_batch_norm(self):
        scale, bias = stem_batch_norm(self.net)
        # The thermometer conv's sums, which it hands on.
        return InputBatchNorm(scale, bias, STEM_SUM_SHAPE.width)

    # ---- timing (nothing is built) ----------------------------------------------------------

    @property
    def _head_positions(self):
        return self.plans[-1].out_size ** 2

    def latencies(self):
        """:func:`pipeline_latencies` of this configuration's arrays."""
        return pipeline_latencies(array_latency(self.array_params()["simd"]))

    def decode_cycles(self):
        """Cycles the weight cache takes to decode each PG layer
        (:meth:`rtl.weight_cache.WeightCache.decode_cycles`)."""
        return layer_decode_cycles(self.compressed, self.plans,
                                   self.config.decoder_symbols_per_cycle)

    def weight_buffers(self):
        """The weight cache's buffers of rows: as many (up to
        :data:`rtl.weight_cache.MAX_WEIGHT_BUFFERS`) as its decoder fills, from reset, before
        the first image can start its layers (its LOAD and stem), so that the first image does
        not wait for weights either and the cache runs that many layers ahead after."""
        ahead = stem_ready_cycles(self.config.stem_groups, self.latencies(),
                                  ThermometerEncoder.latency)
        decode = self.decode_cycles()
        return max(buffers for buffers in range(2, MAX_WEIGHT_BUFFERS + 1)
                   if sum(decode[:buffers]) <= ahead)

    def estimate_cycles(self):
        """The analytical cycle model (:func:`rtl.schedule.estimate_cycles`) of one image."""
        weight, _ = classifier(self.net)
        return estimate_cycles(self.plans, self.config.stem_groups, self.latencies(),
                               ThermometerEncoder.latency,
                               head_latency(weight.shape[1], self.plans[-1].pixels,
                                            self.config.pe),
                               self.decode_cycles(),
                               self.weight_buffers())
