"""The accelerator's configuration, its layer-by-layer schedule and the analytical cycle model.

The conv engine computes, per beat (one cycle), the 9 taps x ``simd_channels`` input channels of
one output pixel for ``pe`` output channels, for the MSB and the LSB plane at once. A PG layer
therefore takes ``out_pixels * (cin / simd_channels) * (cout / pe)`` beats; stride-2 layers
visit only the output pixels. The stem (the thermometer conv) takes one cycle per pixel and
group of ``pe`` of its 16 output channels (:attr:`AcceleratorConfig.stem_groups`).
"""

from dataclasses import dataclass, fields

from fracbnn_golden.conv import TAPS
from fracbnn_golden.model import IMAGE_SIZE, PG_CONVS, PIXELS, STEM_CHANNELS

__all__ = ["CONFIG_KEYS", "HANDOVER_CYCLES", "IMAGE_SIZE", "PIXELS", "PLANES",
           "AcceleratorConfig", "ConfigError", "CycleEstimate", "LayerPlan", "estimate_cycles",
           "plan_layers"]

# The bit planes of the 2-bit activations (MSB and LSB), computed side by side.
PLANES = 2
# On a stream of back-to-back images the next image's pixels are taken while the one before
# is in its layers (the count memory is double-buffered), and the sequencer starts its stem in
# the cycle after it hands the logits over: an image's LOAD is then off the interval, and this
# cycle on it.
HANDOVER_CYCLES = 1


class ConfigError(ValueError):
    """An accelerator configuration that cannot be built."""


@dataclass(frozen=True)
class AcceleratorConfig:
    """Array sizes of the accelerator.

    ``pe``: output channels per beat; ``simd_channels``: input channels per beat (times 9 taps
    and 2 bit planes). Both must divide every layer's channel count (16, 32, 64).
    ``decoder_symbols_per_cycle``: kernels the weight cache's Huffman decoder emits per cycle;
    it must divide ``simd_channels``.
    """
    pe: int = 16
    simd_channels: int = 16
    decoder_symbols_per_cycle: int = 4

    def __post_init__(self):
        for name in CONFIG_KEYS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, not {value!r}")
        for name in ("pe", "simd_channels"):
            value = getattr(self, name)
            if STEM_CHANNELS % value:
                raise ConfigError(f"{name}={value} must divide the layer widths 16, 32 and 64")
        if self.simd_channels % self.decoder_symbols_per_cycle:
            raise ConfigError(f"decoder_symbols_per_cycle={self.decoder_symbols_per_cycle} must "
                              f"divide simd_channels={self.simd_channels}")

    @property
    def stem_groups(self):
        """The stem's output channels in groups of ``pe``: it writes ``pe`` channels of a pixel
        per cycle (the feature-map words are ``pe`` channels wide)."""
        return STEM_CHANNELS // self.pe

    @property
    def lanes(self):
        """BMAC lanes: input bits times output channels per beat, both planes."""
        return PLANES * TAPS * self.simd_channels * self.pe


# The configuration's parameters, in order: what a sweep varies.
CONFIG_KEYS = tuple(field.name for field in fields(AcceleratorConfig))


@dataclass(frozen=True)
class LayerPlan:
    """One PG conv as the sequencer runs it."""
    index: int
    name: str
    cin: int
    cout: int
    stride: int
    in_size: int
    out_size: int
    groups_in: int           # input channel groups (beats per output accumulation)
    groups_out: int          # output channel groups of ``pe``
    param_row: int           # first gate/merge parameter row

    @property
    def beats(self):
        return self.out_size * self.out_size * self.groups_in * self.groups_out


def plan_layers(config):
    """The PG layers in network order with their row bases and beat counts."""
    plans, param_row = [], 0
    for index, conv in enumerate(PG_CONVS):
        groups_in = conv.cin // config.simd_channels
        groups_out = conv.cout // config.pe
        plans.append(LayerPlan(index, conv.name, conv.cin, conv.cout, conv.stride, conv.size,
                               conv.out_size, groups_in, groups_out, param_row))
        param_row += groups_out
    return plans


@dataclass(frozen=True)
class CycleEstimate:
    """Cycles of one image, phase by phase, from the schedule and the pipeline latencies.

    ``phases`` maps a phase name (``load``, ``stem``, each PG layer's name, ``head``) to its
    cycles; ``weight_waits`` maps a PG layer's name to the cycles the engine waited for its
    weights before starting it (the weight cache was still decoding them). Their sum ``total``
    is the latency of an image that finds the accelerator idle: the count from its first
    pixel transfer to its logits becoming valid, which the accelerator's ``cycles`` port
    reports. ``interval`` is the steady-state distance between two images' logits when images
    are streamed back to back: each image's LOAD overlaps the image before it, so the interval
    is the stem, the layers and the head (and the waits) plus :data:`HANDOVER_CYCLES`.
    """
    phases: dict
    weight_waits: dict

    @property
    def total(self):
        return sum(self.phases.values()) + sum(self.weight_waits.values())

    @property
    def interval(self):
        return self.total - self.phases["load"] + HANDOVER_CYCLES


def estimate_cycles(plans, stem_groups, latencies, encoder_latency, head_latency, decode_cycles):
    """The analytical cycle model of :class:`rtl.accelerator.FracBNNAccelerator`.

    LOAD takes a pixel per cycle and ends when the encoder has written the last one; the stem
    issues each pixel once per output group of ``pe`` channels (``stem_groups``,
    :attr:`AcceleratorConfig.stem_groups`) and every PG layer one beat per cycle; each is
    followed by a drain of ``latencies["drain"] + 1`` cycles, except the last layer, whose
    results flow into the head (the pipeline latency plus the head's) instead.

    A layer also waits until its weights are decoded (:class:`rtl.weight_cache.WeightCache`):
    decoding layer ``l`` takes ``decode_cycles[l]`` cycles and starts the cycle after layer
    ``l - 2`` issued its last beat (which frees the buffer) or the cycle after layer ``l - 1``'s
    decoding finished, whichever is later; a layer that waits starts the cycle after its weights
    became visible. Layers 0 and 1 are decoded during the previous
    image's last layers and this image's stem; the model checks that they are.
    """
    pause = latencies["drain"] + 1
    phases = {"load": PIXELS + encoder_latency, "stem": PIXELS * stem_groups + pause}
    for plan in plans[:-1]:
        phases[plan.name] = plan.beats + pause
    phases[plans[-1].name] = plans[-1].beats
    phases["head"] = latencies["layer"] + head_latency - 1
    if len(decode_cycles) != len(plans):
        raise ValueError(f"decode_cycles has {len(decode_cycles)} entries for {len(plans)} layers")
    # Cycle numbers relative to the start of layer 0; ``last[l]``: layer l's last issue cycle,
    # ``filled[l]``: the first cycle its weights are visible.
    waits, start = {}, 0
    last, filled = [], []
    for index, plan in enumerate(plans):
        if index >= 2:
            begin = max(last[index - 2] + 1, filled[index - 1] + 1)
            filled.append(begin + decode_cycles[index])
            # The sequencer sees ``filled`` in its last DRAIN cycle and issues the next one.
            ready = max(filled[index] + 1, start)
            waits[plan.name] = ready - start
            start = ready
        else:
            filled.append(-1)
            waits[plan.name] = 0
        last.append(start + plan.beats - 1)
        start = last[-1] + 1 + pause
    # Layers 0 and 1 of the next image: decoding starts once layers l - 2 (16 and 17) issued
    # their last beats; they must be in before the next image's layer 0 and layer 1 can start,
    # which is at least the head and the stem later (its LOAD overlapped this image).
    begin = max(last[-2] + 1, filled[-1] + 1)
    ready = max(begin + decode_cycles[0] + 1, last[-1] + 1) + decode_cycles[1]
    earliest = last[-1] + 1 + phases["head"] + HANDOVER_CYCLES + phases["stem"]
    if ready > earliest:
        raise ValueError("the first two layers' weights would not be decoded in time; "
                         "the cycle model does not cover this configuration")
    return CycleEstimate(phases, waits)
