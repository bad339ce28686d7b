"""The accelerator's configuration, its layer-by-layer schedule and the analytical cycle model.

The conv engine computes, per beat (one cycle), the 9 taps x ``simd_channels`` input channels of
``pixels_per_beat`` horizontally adjacent output pixels for ``pe`` output channels, for the MSB and
the LSB plane at once. A stride-1 PG layer therefore takes ``out_pixels / pixels_per_beat *
(cin / simd_channels) * (cout / pe)`` beats; a stride-2 layer visits only its output pixels, one
per beat (two of its windows span five columns, which the window memories do not read at once).
The stem (the thermometer conv) takes one cycle per pixel and group of ``pe`` of its 16 output
channels (:attr:`AcceleratorConfig.stem_groups`).
"""

from dataclasses import dataclass, fields

from fracbnn_golden.conv import TAPS
from fracbnn_golden.model import IMAGE_SIZE, PG_CONVS, PIXELS, STEM_CHANNELS

__all__ = ["CONFIG_KEYS", "IMAGE_SIZE", "PIXELS", "PIXELS_PER_BEAT", "PLANES",
           "STEM_HANDOVER_CYCLES", "AcceleratorConfig", "ConfigError", "CycleEstimate",
           "LayerPlan", "estimate_cycles", "plan_layers", "stem_ready_cycles"]

# The bit planes of the 2-bit activations (MSB and LSB), computed side by side.
PLANES = 2
# The output pixels per beat the engine can compute (``AcceleratorConfig.pixels_per_beat``).
PIXELS_PER_BEAT = (1, 2)
# Cycles between the stem's last write reaching its buffer (its drain counted out) and layer 0's
# first beat: the stem's sequencer marks its buffer full in the next cycle, and the layers'
# sequencer, which sees that flag registered, issues in the one after.
STEM_HANDOVER_CYCLES = 2


class ConfigError(ValueError):
    """An accelerator configuration that cannot be built."""


@dataclass(frozen=True)
class AcceleratorConfig:
    """Array sizes of the accelerator.

    ``pe``: output channels per beat; ``simd_channels``: input channels per beat (times 9 taps
    and 2 bit planes). Both must divide every layer's channel count (16, 32, 64).
    ``decoder_symbols_per_cycle``: kernels the weight cache's Huffman decoder emits per cycle;
    it must divide ``simd_channels``. ``pixels_per_beat``: output pixels of a row per beat in
    the stride-1 layers, 1 or 2 (two: the engine's arrays, gate, merge and quantiser twice as
    wide, sharing each beat's weight row and parameter row).
    """
    pe: int = 16
    simd_channels: int = 16
    decoder_symbols_per_cycle: int = 4
    pixels_per_beat: int = 2

    def __post_init__(self):
        for name in CONFIG_KEYS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, not {value!r}")
        for name in ("pe", "simd_channels"):
            value = getattr(self, name)
            if STEM_CHANNELS % value:
                raise ConfigError(f"{name}={value} must divide the layer widths 16, 32 and 64")
        if self.pixels_per_beat not in PIXELS_PER_BEAT:
            raise ConfigError(f"pixels_per_beat={self.pixels_per_beat} must be one of "
                              f"{', '.join(map(str, PIXELS_PER_BEAT))}")
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
        """BMAC lanes: input bits times output channels per beat and pixel, both planes, times
        the pixels per beat."""
        return PLANES * TAPS * self.simd_channels * self.pe * self.pixels_per_beat


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
    pixels: int              # output pixels per beat

    @property
    def beats(self):
        return self.out_size * self.out_size // self.pixels * self.groups_in * self.groups_out


def plan_layers(config):
    """The PG layers in network order with their row bases and beat counts."""
    plans, param_row = [], 0
    for index, conv in enumerate(PG_CONVS):
        groups_in = conv.cin // config.simd_channels
        groups_out = conv.cout // config.pe
        pixels = config.pixels_per_beat if conv.stride == 1 else 1
        plans.append(LayerPlan(index, conv.name, conv.cin, conv.cout, conv.stride, conv.size,
                               conv.out_size, groups_in, groups_out, param_row, pixels))
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
    are streamed back to back: an image's LOAD and stem overlap the layers of the image before
    it, and its head the layers of the one after, so the interval is the PG layers' beats and
    their waits in the steady state (``steady_waits``, by layer name).
    """
    phases: dict
    weight_waits: dict
    interval: int
    steady_waits: dict

    @property
    def total(self):
        return sum(self.phases.values()) + sum(self.weight_waits.values())


def _layer_chain(plans, decode_cycles, buffers, images):
    """Start cycles and weight waits of ``images`` images' PG layers run back to back, counted
    from the first image's layer 0: the weight cache decodes layer after layer (image after
    image), each into the buffer the layer ``buffers`` before it frees
    (:class:`rtl.weight_cache.WeightCache`); the first image's first ``buffers`` layers are
    decoded before it starts."""
    starts, waits, last, filled = [], [], [], []
    start = 0
    for index in range(images * len(plans)):
        plan = plans[index % len(plans)]
        if index >= buffers:
            begin = max(last[index - buffers] + 1, filled[index - 1] + 1)
            filled.append(begin + decode_cycles[plan.index])
            # The sequencer sees ``filled`` (in the last beat or in WAIT) and issues the next.
            ready = max(filled[index] + 1, start)
            waits.append(ready - start)
            start = ready
        else:
            filled.append(-1)
            waits.append(0)
        starts.append(start)
        last.append(start + plan.beats - 1)
        start = last[-1] + 1
    return starts, waits


def stem_ready_cycles(stem_groups, latencies, encoder_latency):
    """Cycles from an image's first pixel to the first cycle its layer 0 may issue, when it
    finds the accelerator idle: its LOAD and its stem (see :func:`estimate_cycles`)."""
    return (PIXELS + encoder_latency + PIXELS * stem_groups + latencies["stem_drain"]
            + STEM_HANDOVER_CYCLES)


def estimate_cycles(plans, stem_groups, latencies, encoder_latency, head_latency, decode_cycles,
                    buffers):
    """The analytical cycle model of :class:`rtl.accelerator.FracBNNAccelerator`.

    LOAD takes a pixel per cycle and ends when the encoder has written the last one; the stem
    issues each pixel once per output group of ``pe`` channels (``stem_groups``,
    :attr:`AcceleratorConfig.stem_groups`), followed by its drain of ``latencies["stem_drain"]``
    cycles and :data:`STEM_HANDOVER_CYCLES`; every PG layer issues one beat per cycle, and the
    next layer's first beat follows its last at once (the layers share no memory word within a
    pipeline's length, and the beats carry their layer in their tags); the last layer's results
    flow into the head (the pipeline latency plus the head's).

    A layer also waits until its weights are decoded (:class:`rtl.weight_cache.WeightCache`,
    ``buffers`` buffers of rows): decoding layer ``l`` takes ``decode_cycles[l]`` cycles and
    starts the cycle after layer ``l - buffers`` issued its last beat (which frees the buffer)
    or the cycle after layer ``l - 1``'s decoding finished, whichever is later (counting across
    images: layer 0 of an image follows layer 17 of the one before); a layer that waits starts
    the cycle after its weights became visible.

    On a stream the next image's stem runs while the image before it is in its layers 1 to 17
    (its buffer is free once layer 0 has issued its last beat), so its layers follow at once;
    the model checks that the stem is done in time, and that the first image's first
    ``buffers`` layers, which the cache decodes from reset on, are decoded before that image's
    stem has ended.
    """
    phases = {"load": PIXELS + encoder_latency}
    stem = phases["stem"] = (stem_ready_cycles(stem_groups, latencies, encoder_latency)
                             - phases["load"])
    for plan in plans:
        phases[plan.name] = plan.beats
    phases["head"] = latencies["layer"] + head_latency - 1
    if len(decode_cycles) != len(plans):
        raise ValueError(f"decode_cycles has {len(decode_cycles)} entries for {len(plans)} layers")
    if sum(decode_cycles[:buffers]) > phases["load"] + phases["stem"]:
        raise ValueError("the first layers' weights would not be decoded in time; "
                         "the cycle model does not cover this configuration")
    # Four images: the waits repeat from the second image on (the decoding of an image's first
    # layers depends on the image before it only).
    starts, waits = _layer_chain(plans, decode_cycles, buffers, 4)
    layers = len(plans)
    # An image's logits follow its last layer's start by the same cycles in every image.
    intervals = {starts[(k + 1) * layers - 1] - starts[k * layers - 1] for k in (2, 3)}
    steady = waits[2 * layers:3 * layers]
    if len(intervals) != 1 or steady != waits[3 * layers:]:
        raise ValueError("the weight waits do not settle from image to image; the cycle model "
                         "does not cover this configuration")
    interval = intervals.pop()
    # The next image's stem starts once layer 0 has issued its last beat and must end before
    # the image before it has gone through its layers.
    if plans[0].beats + stem > interval:
        raise ValueError("the stem would hold up the layers; the cycle model does not cover "
                         "this configuration")
    return CycleEstimate(phases, dict(zip((p.name for p in plans), waits[:layers])), interval,
                         dict(zip((p.name for p in plans), steady)))
