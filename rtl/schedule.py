"""The accelerator's configuration, its layer-by-layer schedule and the analytical cycle model.

The conv engine computes, per beat (one cycle), the 9 taps x ``simd_channels`` input channels of
one output pixel for ``pe`` output channels, for the MSB and the LSB plane at once. A PG layer
therefore takes ``out_pixels * (cin / simd_channels) * (cout / pe)`` beats; stride-2 layers
visit only the output pixels. The stem (the thermometer conv) takes one cycle per pixel.
"""

from dataclasses import dataclass

from fracbnn_golden.model import PG_CONVS, STEM_CHANNELS

__all__ = ["AcceleratorConfig", "ConfigError", "CycleEstimate", "LayerPlan", "estimate_cycles",
           "plan_layers"]

IMAGE_SIZE = 32
PIXELS = IMAGE_SIZE * IMAGE_SIZE


class ConfigError(ValueError):
    """An accelerator configuration that cannot be built."""


@dataclass(frozen=True)
class AcceleratorConfig:
    """Array sizes of the accelerator.

    ``pe``: output channels per beat; ``simd_channels``: input channels per beat (times 9 taps
    and 2 bit planes). Both must divide every layer's channel count (16, 32, 64).
    """
    pe: int = 16
    simd_channels: int = 16

    def __post_init__(self):
        for name in ("pe", "simd_channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, not {value!r}")
            if STEM_CHANNELS % value:
                raise ConfigError(f"{name}={value} must divide the layer widths 16, 32 and 64")

    @property
    def lanes(self):
        """BMAC lanes: input bits times output channels per beat, both planes."""
        return 2 * 9 * self.simd_channels * self.pe

    @property
    def weight_row_bits(self):
        return self.pe * 9 * self.simd_channels


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
    weight_row: int          # first weight row of the layer
    param_row: int           # first gate/merge parameter row

    @property
    def beats(self):
        return self.out_size * self.out_size * self.groups_in * self.groups_out


def plan_layers(config):
    """The PG layers in network order with their row bases and beat counts."""
    plans, weight_row, param_row = [], 0, 0
    for index, conv in enumerate(PG_CONVS):
        groups_in = conv.cin // config.simd_channels
        groups_out = conv.cout // config.pe
        plans.append(LayerPlan(index, conv.name, conv.cin, conv.cout, conv.stride, conv.size,
                               conv.out_size, groups_in, groups_out, weight_row, param_row))
        weight_row += groups_in * groups_out
        param_row += groups_out
    return plans


@dataclass(frozen=True)
class CycleEstimate:
    """Cycles of one image, phase by phase, from the schedule and the pipeline latencies.

    ``phases`` maps a phase name (``load``, ``stem``, each PG layer's name, ``head``) to its
    cycles; their sum ``total`` is the count from the first pixel transfer to the logits
    becoming valid, which the accelerator's ``cycles`` port reports.
    """
    phases: dict

    @property
    def total(self):
        return sum(self.phases.values())


def estimate_cycles(plans, latencies, encoder_latency, head_latency):
    """The analytical cycle model of :class:`rtl.accelerator.FracBNNAccelerator`.

    LOAD takes a pixel per cycle and ends when the encoder has written the last one; the stem
    and every PG layer issue one beat per cycle and are followed by a drain of
    ``latencies["drain"] + 1`` cycles, except the last layer, whose results flow into the head
    (the pipeline latency plus the head's) instead.
    """
    pause = latencies["drain"] + 1
    phases = {"load": PIXELS + encoder_latency, "stem": PIXELS + pause}
    for plan in plans[:-1]:
        phases[plan.name] = plan.beats + pause
    phases[plans[-1].name] = plans[-1].beats
    phases["head"] = latencies["layer"] + head_latency - 1
    return CycleEstimate(phases)
