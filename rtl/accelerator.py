"""The whole FracBNN CIFAR-10 accelerator: one image in, ten logits out."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from fracbnn_golden.conv import TAPS
from fracbnn_golden.model import CLASSES, COLOURS

from .builder import UnitBuilder
from .fixedpoint import FM_SHAPE
from .lookup import constant_table
from .pipeline import delay_line
from .schedule import IMAGE_SIZE, PIXELS, AcceleratorConfig
from .thermometer import COUNT_SHAPE
from .window import divmod_layout

__all__ = ["FracBNNAccelerator", "Phase", "StemPhase"]

# The residual's block is picked from the two input FM buffers' reads and registered before the
# shortcut: the select drives every bit of both words (thousands of loads), and in the same
# cycle as the shortcut's first adders it made their path too long. The read is issued that
# much earlier, so no cycle is added.
RESIDUAL_SELECT_LATENCY = 1


def _step(coordinate, step, divisor=3):
    """Statements adding ``step`` (1 or 2, at most ``divisor``) to a (quotient, remainder)
    coordinate of a division by ``divisor``."""
    remainder = coordinate.remainder + step
    wraps = remainder >= divisor
    return [coordinate.quotient.eq(coordinate.quotient + wraps),
            coordinate.remainder.eq(Mux(wraps, remainder - divisor, remainder))]


def _clear(*coordinates):
    statements = []
    for coordinate in coordinates:
        statements += [coordinate.quotient.eq(0), coordinate.remainder.eq(0)]
    return statements


def _taps_inside(y, x, size):
    """Bit ``ky * 3 + kx``: whether tap (ky, kx) of the window centred on (y, x) is in the map."""
    rows = [y >= 1, Const(1), y + 2 <= size]
    cols = [x >= 1, Const(1), x + 2 <= size]
    return Cat(rows[ky] & cols[kx] for ky in range(3) for kx in range(3))


class _PhaseConstants:
    """The layers' sequencer's per-layer constants: :attr:`rows` ``[l]`` for PG layer ``l`` and
    a last row that repeats layer 0's (what ``upcoming`` holds in the last layer: the next
    image's first), each a dict of :attr:`layout`'s fields. ``pair``: the layer computes two
    output pixels per beat; ``last_column`` is the column of a row's last beat (its first
    pixel), ``out_size - pixels``: the scan compares with it, and a subtraction in front of the
    compares lengthened the sequencer's path. ``groups_residual`` is a layer's input groups
    of ``pe`` channels (the residual's groups). The map sizes give buffer 0's and 1's row
    length (``ceil(size / 3)``, :class:`rtl.window.WindowMemory`) and half width
    (:class:`rtl.fm_memory.FeatureMapMemory`): layer ``l > 0`` reads buffer ``l % 2`` and
    writes the other; layer 0 (``reads_stem``) reads the stem's buffer, whose map is always
    32x32, and writes buffer 1. ``last`` marks the last layer, ``beats`` counts the layer's
    beats (its end is a counter's, not the scan's compares)."""

    def __init__(self, plans, pe):
        def row(plan):
            sizes = [plan.in_size if plan.index % 2 == buffer else plan.out_size
                     for buffer in range(2)]
            return {"in_size": plan.in_size, "last_column": plan.out_size - plan.pixels,
                    "pair": plan.pixels == 2, "stride2": plan.stride == 2,
                    "groups_in": plan.groups_in, "groups_out": plan.groups_out,
                    "groups_residual": plan.cin // pe,
                    "param_base": plan.param_row, "reads_stem": plan.index == 0,
                    "last": plan.index == len(plans) - 1, "beats": plan.beats,
                    "row_length": [-(-size // 3) for size in sizes],
                    "half_width": [size // 2 for size in sizes]}

        self.rows = [row(plan) for plan in plans]
        self.rows.append(self.rows[0])

        def field(key):
            return range(max(int(r[key]) for r in self.rows) + 1)

        self.layout = data.StructLayout({
            **{key: field(key) for key in ("in_size", "last_column", "pair", "stride2",
                                           "groups_in", "groups_out", "groups_residual",
                                           "param_base", "reads_stem", "last", "beats")},
            "row_length": data.ArrayLayout(range(-(-IMAGE_SIZE // 3) + 1), 2),
            "half_width": data.ArrayLayout(range(IMAGE_SIZE // 2 + 1), 2),
        })

    def const(self, row):
        return self.layout.const(row)


class Phase(enum.Enum, shape=2):
    """The layers' sequencer's phase (the ``phase`` observation port); WAIT: the next layer's
    weights are not decoded yet, or (before layer 0) no image has come out of the stem, or
    (before the last layer) the head still holds the previous image's logits. Two bits for two
    phases: GTKWave shows a single bit as a bit, not by its name (its translate filters apply
    to vectors)."""
    WAIT = 0
    LAYER = 1


class StemPhase(enum.Enum, shape=2):
    """The stem's sequencer's phase (the ``stem_phase`` observation port); IDLE: waiting for an
    image's pixels (loading itself runs beside it), FULL: its output waits for layer 0."""
    IDLE = 0
    ISSUE = 1
    DRAIN = 2
    FULL = 3


class FracBNNAccelerator(wiring.Component):
    """FracBNN CIFAR-10 inference, layer by layer on one conv engine, bit-exact.

    An image goes through LOAD (pixels to thermometer counts, one per cycle, into one of two
    count buffers), STEM (the prefix-sum thermometer conv and its BN, one output pixel per
    cycle for each of its ``16 / pe`` output groups: the conv computes all 16 channels every
    cycle and the group's ``pe`` are written, as a PG layer writes its output groups), the 18
    PG layers (:mod:`rtl.schedule`: one beat per cycle on the conv engine, MSB and LSB planes
    together, for ``pixels_per_beat`` output pixels of a row in the stride-1 layers) and HEAD.
    Two sequencers run side by side: the stem's, into buffers of its own, and the layers'; so
    on a stream of images the next image loads and goes through its stem while the one before
    it is in its layers, and the head finishes an image while the next one is in its first
    layers. Feature maps stay on chip: 2-bit activations in :class:`rtl.window.WindowMemory`
    banks (a beat's 3x3 windows per cycle; written ``pe`` channels and read ``simd_channels``
    at a time), FM codes in :class:`rtl.fm_memory.FeatureMapMemory` banks (a 2x2 block per
    cycle: a pair's residuals, or the stride-2 shortcut's window), three of each: the stem
    writes its own, which layer 0 reads; layer ``l > 0`` reads buffer ``l % 2`` and writes the
    other. Weights are stored Huffman-compressed in the :class:`rtl.weight_cache.WeightCache`,
    which decodes the next layers into its other buffers while a layer reads one.

    Parameters
    ----------
    net : fracbnn_golden.FracBNN
        The model; its parameters become memory contents.
    config : rtl.schedule.AcceleratorConfig or None
        The array sizes (default: ``AcceleratorConfig()``); every configuration
        :class:`~rtl.schedule.AcceleratorConfig` accepts is implemented. The units are built
        by :class:`rtl.builder.UnitBuilder` (:attr:`units`) when the accelerator is elaborated.

    Members
    -------
    pixels : In(stream.Signature(StructLayout({"rgb": ArrayLayout(8, 3)})))
        An image's 1024 pixels in row-major order.
    logits : Out(stream.Signature(StructLayout({"logits": ArrayLayout(FM_SHAPE, 10)})))
        The 10 logits (FM codes, value = code / 128), one transfer per image.
    cycles : Out(32)
        Cycles from an image's first pixel transfer to its logits becoming valid (it includes
        any wait behind the image before it): counting while the image is in its last layer
        and the head, then held until the next image reaches its last layer.
    images : Out(32)
        Images finished.
    busy : Out(1)
        An image is in flight (being loaded, loaded, or computed).
    error : Out(1)
        The weight cache found an invalid code (sticky until reset; a corrupt memory image only).
    phase : Out(Phase)
        Observation: the layers' sequencer's phase.
    stem_phase : Out(StemPhase)
        Observation: the stem's sequencer's phase.
    layer : Out(range(19))
        Observation: the layer in progress (or the last one run), numbered as in ``writeback``.
    beat : Out(range(groups_in))
        Observation: the input-channel beat the conv engine issues in LAYER.
    writeback, stem_writeback : Out(stream.Signature(StructLayout({...}), always_ready=True))
        Observation: every feature-map word the layers (``writeback``) and the stem
        (``stem_writeback``) write, one transfer per beat's words; the payload has ``layer``
        (0 for the stem, ``l + 1`` for PG layer ``l``), the (first) pixel ``y``, ``x``, the
        output channel ``group``, the ``pixels`` written (1, or 2: ``(y, x)`` and
        ``(y, x + 1)``) and their FM codes ``fm``, ``pe`` per pixel. Testbenches compare them
        with the golden trace.

    Protocol
    --------
    ``pixels`` and ``logits`` are streams with back-pressure; ``pixels`` are taken whenever a
    count buffer is free, so an image's pixels may be sent while the one before it is still
    being computed. The write-back streams are always ready (an observer cannot stall the
    engine). Inside a phase nothing stalls: each phase is a fixed-latency pipeline; layer 0
    starts when the stem has drained, and each layer follows the one before it at once, unless
    its weights are not decoded yet, or (the last layer) the head still holds the previous
    image's logits.

    Latency
    -------
    An image that finds the accelerator idle takes ``estimate_cycles().total`` cycles, and
    back-to-back images follow each other by ``estimate_cycles().interval`` (the analytical
    model, equal to the simulation); the pipeline points are :attr:`latencies`
    (:func:`rtl.builder.pipeline_latencies`).
    """

    def __init__(self, net, config=None):
        config = AcceleratorConfig() if config is None else config
        self.net, self.config = net, config
        self.units = UnitBuilder(net, config)
        self.plans = self.units.plans
        self.latencies = self.units.latencies()
        writeback = stream.Signature(data.StructLayout({
            "layer": range(len(self.plans) + 1), "y": range(IMAGE_SIZE),
            "x": range(IMAGE_SIZE), "group": range(max(p.groups_out for p in self.plans)),
            "pixels": range(1, config.pixels_per_beat + 1),
            "fm": data.ArrayLayout(FM_SHAPE, config.pe * config.pixels_per_beat)}),
            always_ready=True)
        super().__init__({
            "pixels": In(stream.Signature(data.StructLayout({
                "rgb": data.ArrayLayout(unsigned(8), COLOURS)}))),
            "logits": Out(stream.Signature(data.StructLayout({
                "logits": data.ArrayLayout(FM_SHAPE, len(CLASSES))}))),
            "cycles": Out(32),
            "images": Out(32),
            "busy": Out(1),
            "error": Out(1),
            "phase": Out(Phase),
            "stem_phase": Out(StemPhase),
            "layer": Out(range(len(self.plans) + 1)),
            "beat": Out(range(max(p.groups_in for p in self.plans))),
            "writeback": Out(writeback),
            "stem_writeback": Out(writeback),
        })

    def estimate_cycles(self):
        """The analytical cycle model (:func:`rtl.schedule.estimate_cycles`) of this build."""
        return self.units.estimate_cycles()

    def elaborate(self, platform):
        m = Module()
        cfg, plans, units = self.config, self.plans, self.units
        pe, simd, pixels = cfg.pe, cfg.simd_channels, cfg.pixels_per_beat
        groups_max = max(plan.groups_out for plan in plans)
        beats_max = max(plan.groups_in for plan in plans)
        last_layer_index = len(plans) - 1
        word_width = FM_SHAPE.width * pe

        # ---- storage ------------------------------------------------------------------------
        # Two count buffers: LOAD fills one while the stem reads the other, so an image's
        # pixels are taken while the image before it is in its stem.
        count_buffers = units.instances("count_memory")
        for index in range(2):
            m.submodules[f"counts{index}"] = count_buffers[index]
        # Buffers 0 and 1 for the layers, the last one the stem's.
        *q_buffers, q_stem = units.instances("activation_buffer")
        *fm_buffers, fm_stem = units.instances("feature_map_buffer")
        for index in range(2):
            m.submodules[f"q{index}"] = q_buffers[index]
            m.submodules[f"fm{index}"] = fm_buffers[index]
        m.submodules.q_stem, m.submodules.fm_stem = q_stem, fm_stem
        m.submodules.weights = weights = units.weight_cache()
        m.d.comb += self.error.eq(weights.error)

        # ---- units --------------------------------------------------------------------------
        m.submodules.encoder = encoder = units.thermometer_encoder()
        m.submodules.stem_conv = stem_conv = units.thermometer_conv()
        m.submodules.stem_bn = stem_bn = units.input_batch_norm()
        # MSB and LSB plane of each pixel of a beat: arrays[2 * p + plane].
        arrays = units.instances("xnor_popcount_array")
        for index, array in enumerate(arrays):
            pixel, plane = divmod(index, 2)
            name = ("msb", "lsb")[plane] + "_array" + (str(pixel) if pixel else "")
            m.submodules[name] = array
        m.submodules.gate = gate = units.precision_gate()
        m.submodules.merge = merge = units.merge_unit()
        m.submodules.shortcut = shortcut = units.shortcut_pool()
        m.submodules.quantizer = quantizer = units.activation_quantizer()
        m.submodules.stem_quantizer = stem_quantizer = units.stem_quantizer()
        m.submodules.head = head = units.head()
        # Inside a phase nothing stalls: every unit's consumer is always ready.
        for unit in (encoder, stem_conv, stem_bn, *arrays, gate, merge, shortcut, quantizer,
                     stem_quantizer):
            m.d.comb += unit.o.ready.eq(1)
        wiring.connect(m, head.o, wiring.flipped(self.logits))

        # ---- latencies (cycles after a beat's issue) -------------------------------------------
        window_latency, stem_latency, gate_at, merge_at, layer_latency, stem_drain = (
            self.latencies[key] for key in ("window", "stem", "gate_at", "merge_at", "layer",
                                            "stem_drain"))
        # The residual's block is read from the input FM buffer so that it reaches the merge
        # with the gate's output: picked from the buffer read and registered
        # (RESIDUAL_SELECT_LATENCY), then through the shortcut (stride 2) or a delay line of its
        # latency.
        fm_latency = fm_buffers[0].latency
        block_at = merge_at - shortcut.latency
        residual_read_at = block_at - RESIDUAL_SELECT_LATENCY - fm_latency
        # Layers follow each other without a gap, so a layer's last beats are still in the
        # pipeline while the next one issues: everything after the issue takes its layer from
        # the beat's tag, not from ``layer`` or ``current``. The exception is a FM buffer's half
        # width, which the residual reads use ``residual_read_at`` cycles after the issue (it
        # is delayed by as much; the writes, later still, write the buffer the next layer reads,
        # whose map, and so half width, both layers share). The one hazard left is between
        # images: the stem's buffers are freed at layer 0's last issue, and the next stem's
        # first write reaches them after layer 0's last read.
        assert 2 + stem_latency > residual_read_at + fm_latency

        # ---- per-layer constants ------------------------------------------------------------
        # Registers, not lookups of ``layer``: the lookups would lie on the paths into the
        # memories' addresses and the scan's compares. ``upcoming`` holds the next layer's
        # (looked up while ``layer`` stands still) and becomes ``current`` in the cycle the
        # sequencer moves on.
        layer = Signal(range(len(plans)), init=last_layer_index)
        read_buffer = layer[0]            # layer l > 0 reads buffer l % 2 and writes the other
        rows = _PhaseConstants(plans, pe)
        constants_table = constant_table([rows.const(row).as_bits() for row in rows.rows])
        current, upcoming = Signal(rows.layout, init=rows.rows[0]), Signal(rows.layout)
        m.d.sync += upcoming.eq(constants_table[layer + 1])
        in_size, last_column, stride2, pair = (current.in_size, current.last_column,
                                               current.stride2, current.pair)
        groups_in, groups_out, groups_residual, param_base = (
            current.groups_in, current.groups_out, current.groups_residual, current.param_base)
        for index in range(2):
            half_width = delay_line(m, current.half_width[index], residual_read_at,
                                    f"half_width{index}")[-1]
            m.d.comb += [
                q_buffers[index].row_length.eq(current.row_length[index]),
                fm_buffers[index].half_width.eq(half_width),
            ]
        m.d.comb += [q_stem.row_length.eq(-(-IMAGE_SIZE // 3)),
                     fm_stem.half_width.eq(IMAGE_SIZE // 2)]

        # ---- LOAD: pixels -> thermometer counts, independent of the sequencers ---------------
        # Pixels go to count buffer ``load_buffer`` whenever it is free; a buffer is ``full``
        # from its image's last count until the stem has read it. ``now`` stamps each image's
        # first pixel transfer (``started``) for its ``cycles``.
        # Rows (and the count buffers' columns) as quotient and remainder by 3; the activation
        # buffers' columns by their banks across (pixels + 2: a beat's windows side by side).
        coordinate = divmod_layout(IMAGE_SIZE + 2, 3)
        columns = pixels + 2
        column = divmod_layout(IMAGE_SIZE + 2, columns)
        load_buffer, stem_buffer = Signal(), Signal()
        full = [Signal(name=f"full{index}") for index in range(2)]
        loaded = Signal(range(PIXELS + 1))
        load_y, load_x = Signal(range(IMAGE_SIZE)), Signal(range(IMAGE_SIZE))
        load_y3, load_x3 = Signal(coordinate), Signal(coordinate)
        # Whether (load_y, load_x) is the image's last pixel: a register kept one count ahead, as
        # the comparisons lay on the path from the last count through ``image_ready`` into the
        # stem's start (the scan counters' clears).
        at_last_pixel = Signal()
        now = Signal.like(self.cycles)
        started = Array(Signal.like(self.cycles, name=f"started{index}") for index in range(2))
        m.d.sync += now.eq(now + 1)
        accepting = (loaded < PIXELS) & ~Array(full)[load_buffer]
        pixel_transfer = self.pixels.valid & self.pixels.ready
        last_count = encoder.o.valid & at_last_pixel
        m.d.comb += [
            encoder.i.valid.eq(self.pixels.valid & accepting),
            self.pixels.ready.eq(encoder.i.ready & accepting),
            encoder.i.payload.pixel.eq(self.pixels.payload.rgb),
        ]
        with m.If(pixel_transfer):
            m.d.sync += loaded.eq(loaded + 1)
            with m.If(loaded == 0):
                m.d.sync += started[load_buffer].eq(now)
        with m.If(encoder.o.valid):
            m.d.sync += [load_x.eq(load_x + 1), *_step(load_x3, 1),
                         at_last_pixel.eq((load_y == IMAGE_SIZE - 1)
                                          & (load_x == IMAGE_SIZE - 2))]
            with m.If(load_x == IMAGE_SIZE - 1):
                m.d.sync += [*_clear(load_x3), load_y.eq(load_y + 1), *_step(load_y3, 1)]
        with m.If(last_count):
            m.d.sync += [loaded.eq(0), load_y.eq(0), *_clear(load_y3),
                         load_buffer.eq(~load_buffer)]
        for index in range(2):
            m.d.comb += [
                count_buffers[index].row_length.eq(-(-IMAGE_SIZE // 3)),
                count_buffers[index].write.en.eq(encoder.o.valid & (load_buffer == index)),
                count_buffers[index].write.y.eq(load_y3),
                count_buffers[index].write.x.eq(load_x3),
                count_buffers[index].write.data.eq(Cat(encoder.o.payload.count)),
            ]
        release_counts = Signal()           # the stem has read the image in ``stem_buffer``
        for index in range(2):
            with m.If(last_count & (load_buffer == index)):
                m.d.sync += full[index].eq(1)
            with m.Elif(release_counts & (stem_buffer == index)):
                m.d.sync += full[index].eq(0)
        # The stem may start on the image in ``stem_buffer``: complete, or completing now.
        image_ready = Array(full)[stem_buffer] | (last_count & (load_buffer == stem_buffer))

        # ---- STEM: count windows -> thermometer conv -> BN -> the stem's buffers ---------------
        # Its own scan: output group innermost, then column, row (``stem_i3``, ``stem_j3``: the
        # same by 3, the count buffers' coordinates).
        stem_i, stem_j = Signal(range(IMAGE_SIZE)), Signal(range(IMAGE_SIZE))
        stem_i3, stem_j3 = Signal(coordinate), Signal(coordinate)
        stem_jc = Signal(column)            # stem_j in the activation buffers' columns
        stem_og = Signal(range(cfg.stem_groups))
        issue_stem = Signal()
        stem_window = self.latencies["stem_window"]
        stem_inside = delay_line(m, _taps_inside(stem_i, stem_j, IMAGE_SIZE), stem_window,
                                 "stem_inside")
        stem_valid = delay_line(m, issue_stem, stem_window, "stem_valid")
        for index in range(2):
            m.d.comb += [
                count_buffers[index].read.en.eq(1),
                count_buffers[index].read.y.eq(stem_i3),
                count_buffers[index].read.x.eq(stem_j3),
            ]
        # The stem's buffer stays the same until its drain has ended, long after the window;
        # the window is registered behind the select (COUNT_SELECT_LATENCY).
        counts = Signal.like(count_buffers[0].read.data.as_value(), name="stem_counts")
        m.d.sync += counts.eq(Mux(stem_buffer, count_buffers[1].read.data.as_value(),
                                  count_buffers[0].read.data.as_value()))
        m.d.comb += [
            stem_conv.i.valid.eq(stem_valid[-1]),
            stem_conv.i.payload.valid.eq(stem_inside[-1]),
            stem_bn.i.valid.eq(stem_conv.o.valid),
            stem_bn.i.payload.sums.eq(stem_conv.o.payload.sums),
        ]
        for tap in range(TAPS):
            for colour in range(COLOURS):
                width = COUNT_SHAPE.width
                start = (tap * COLOURS + colour) * width
                m.d.comb += stem_conv.i.payload.count[tap][colour].eq(
                    counts[start:start + width])
        # Where a stem output goes, travelling beside it.
        stem_tag = Signal(data.StructLayout({
            "valid": 1, "y": range(IMAGE_SIZE), "x": range(IMAGE_SIZE), "y3": coordinate,
            "xc": column, "group": range(cfg.stem_groups)}))
        m.d.comb += [stem_tag.valid.eq(issue_stem), stem_tag.y.eq(stem_i),
                     stem_tag.x.eq(stem_j), stem_tag.y3.eq(stem_i3), stem_tag.xc.eq(stem_jc),
                     stem_tag.group.eq(stem_og)]
        stem_out = delay_line(m, stem_tag, stem_latency, "stem_tag")[-1]
        # The conv and the BN compute the 16 channels in every cycle; the tag's group picks the
        # pe written.
        stem_fm = stem_bn.o.payload.fm.as_value().word_select(stem_out.group, word_width)
        # The stem writes a pixel per cycle: into the FM buffer as the pixel of its column's
        # parity (its write port takes a pixel pair from an even column), into the activation
        # buffer as the first pixel (its write port takes any column).
        fm_stem_pixel = stem_out.x[0] if pixels == 2 else 0
        m.d.comb += [
            fm_stem.write.en.eq(stem_out.valid << fm_stem_pixel),
            fm_stem.write.y.eq(stem_out.y),
            fm_stem.write.x.eq(stem_out.x),
            fm_stem.write.group.eq(stem_out.group),
            fm_stem.write.data.eq(Cat(stem_fm for _ in range(pixels))),
            stem_quantizer.i.valid.eq(stem_out.valid),
            stem_quantizer.i.payload.fm.eq(stem_fm),
            self.stem_writeback.valid.eq(stem_out.valid),
            self.stem_writeback.payload.layer.eq(0),
            self.stem_writeback.payload.y.eq(stem_out.y),
            self.stem_writeback.payload.x.eq(stem_out.x),
            self.stem_writeback.payload.group.eq(stem_out.group),
            self.stem_writeback.payload.pixels.eq(1),
            self.stem_writeback.payload.fm.eq(stem_fm),
        ]
        stem_q_tag = delay_line(m, stem_out, stem_quantizer.latency, "stem_q_tag")[-1]
        m.d.comb += [
            q_stem.write.en.eq(stem_quantizer.o.valid),
            q_stem.write.y.eq(stem_q_tag.y3),
            q_stem.write.x.eq(stem_q_tag.xc),
            q_stem.write.group.eq(stem_q_tag.group),
            q_stem.write.data[0].eq(Cat(stem_quantizer.o.payload.q)),
        ]

        # ---- PG layers: windows and weights -> XNOR-popcount arrays -> gate -> merge ------------
        # The beat's (first) output pixel; the same as row by 3 and column by ``columns``; the
        # (first) window's centre, the same way.
        i, j = Signal(range(IMAGE_SIZE)), Signal(range(IMAGE_SIZE))
        i3, jc = Signal(coordinate), Signal(column)
        y3, xc = Signal(coordinate), Signal(column)
        og, cb = Signal(range(groups_max)), Signal(range(beats_max))
        issue_layer = Signal()
        clear_scan = [i.eq(0), j.eq(0), og.eq(0), cb.eq(0), *_clear(i3, jc, y3, xc)]
        centre_y, centre_x = Mux(stride2, i << 1, i), Mux(stride2, j << 1, j)
        last_beat = cb == groups_in - 1
        for buffer in (*q_buffers, q_stem):
            m.d.comb += [
                buffer.read.en.eq(1),
                buffer.read.y.eq(y3),
                buffer.read.x.eq(xc),
                buffer.read.group.eq(cb),
            ]
        # The weight cache's buffer of the layer (``weight_buffer``) and of the next one: the
        # cache fills its buffers in turn, layer after layer.
        weight_buffers = weights.buffers
        weight_buffer = Signal(range(weight_buffers), init=weight_buffers - 1)
        next_weight_buffer = Signal(range(weight_buffers))

        def advance_weight_buffer():
            return [weight_buffer.eq(next_weight_buffer),
                    next_weight_buffer.eq(Mux(next_weight_buffer == weight_buffers - 1, 0,
                                              next_weight_buffer + 1))]

        m.d.comb += [weights.read.buffer.eq(weight_buffer),
                     weights.read.row.eq(og * groups_in + cb)]
        # The row meets the window: registered for the cycles the window memory takes longer.
        weight_row = delay_line(m, weights.read.data, window_latency - weights.latency,
                                "weight_row")[-1]
        # The taps inside the map, of each pixel's window (the second's right of the first's).
        beat_inside = delay_line(m, Cat(_taps_inside(centre_y, centre_x + pixel, in_size)
                                        for pixel in range(pixels)),
                                 window_latency, "beat_inside")
        beat_valid = delay_line(m, issue_layer, window_latency, "beat_valid")
        beat_last = delay_line(m, last_beat, window_latency, "beat_last")
        reads_stem = current.reads_stem

        def input_buffer(ports, beat):
            """The read data of the input buffer of ``beat``'s layer (a tag) among buffers 0, 1
            and the stem's."""
            return Mux(beat.reads_stem, ports[2].as_value(),
                       Mux(beat.read_buffer, ports[1].as_value(), ports[0].as_value()))

        # Where an output (pixel, channel group) goes, travelling beside its beats.
        # ``pair``: the beat's second pixel is computed too.
        tag = Signal(data.StructLayout({
            "valid": 1, "pair": 1, "y": range(IMAGE_SIZE), "x": range(IMAGE_SIZE),
            "y3": coordinate, "xc": column, "group": range(groups_max),
            "residual_group": range(groups_max), "row": range(len(merge.params)), "stride2": 1,
            "head": 1, "layer": range(len(plans)), "read_buffer": 1, "reads_stem": 1}))
        m.d.comb += [
            tag.valid.eq(issue_layer & last_beat), tag.pair.eq(pair),
            tag.layer.eq(layer), tag.read_buffer.eq(read_buffer), tag.reads_stem.eq(reads_stem),
            tag.y.eq(i), tag.x.eq(j), tag.y3.eq(i3), tag.xc.eq(jc), tag.group.eq(og),
            # A stride-2 layer duplicates its input channels: group og reads og mod
            # groups_residual.
            tag.residual_group.eq(Mux(og >= groups_residual, og - groups_residual, og)),
            tag.row.eq(param_base + og),
            tag.stride2.eq(stride2),
            tag.head.eq(current.last),
        ]
        tags = delay_line(m, tag, layer_latency, "tag")
        windows = input_buffer([buffer.read.data for buffer in (*q_buffers, q_stem)],
                               tags[window_latency - 1])
        window_bits = TAPS * 2 * simd
        for index, array in enumerate(arrays):
            pixel, plane = divmod(index, 2)             # plane 0: MSB (bit 1 of q), 1: LSB
            bit = 1 - plane
            taps = windows[pixel * window_bits:(pixel + 1) * window_bits]
            inside = beat_inside[-1][pixel * TAPS:(pixel + 1) * TAPS]
            m.d.comb += [
                array.i.valid.eq(beat_valid[-1]),
                array.i.payload.last.eq(beat_last[-1]),
                array.i.payload.activations.eq(Cat(
                    taps[tap * 2 * simd + 2 * c + bit]
                    for tap in range(TAPS) for c in range(simd))),
            ]
            for p in range(pe):
                m.d.comb += array.i.payload.weights[p].eq(
                    weight_row[p * TAPS * simd:(p + 1) * TAPS * simd])
            for tap in range(TAPS):
                m.d.comb += array.i.payload.count[tap].eq(Mux(inside[tap], simd, 0))

        at_gate, at_residual, at_merge = tags[gate_at - 1], tags[residual_read_at - 1], \
            tags[merge_at - 1]
        lsb_sums = delay_line(m, Cat(array.o.payload.as_value() for array in arrays[1::2]),
                              gate.latency, "lsb_sums")
        m.d.comb += [
            gate.i.valid.eq(at_gate.valid),
            gate.i.payload.msb.eq(Cat(array.o.payload.as_value() for array in arrays[0::2])),
            gate.i.payload.row.eq(at_gate.row),
        ]
        # Residual: the input map at the output pixels, or the 2x2 block pooled (stride 2; one
        # pixel per beat). A beat's two pixels are in one block: the first's column is even.
        for buffer in (*fm_buffers, fm_stem):
            m.d.comb += [
                buffer.read.en.eq(1),
                buffer.read.block_y.eq(Mux(at_residual.stride2, at_residual.y,
                                           at_residual.y >> 1)),
                buffer.read.block_x.eq(Mux(at_residual.stride2, at_residual.x,
                                           at_residual.x >> 1)),
                buffer.read.group.eq(at_residual.residual_group),
            ]
        block = Signal(len(fm_stem.read.data.as_value()), name="residual_block")
        m.d.sync += block.eq(input_buffer([buffer.read.data for buffer in (*fm_buffers, fm_stem)],
                                          tags[residual_read_at + fm_latency - 1]))
        at_block = tags[block_at - 1]                           # the beat of ``block``
        block_words = Array(block[k * word_width:(k + 1) * word_width] for k in range(4))
        pixel_late = delay_line(
            m, Cat(block_words[Cat(at_block.x[0] ^ pixel, at_block.y[0])]
                   for pixel in range(pixels)), shortcut.latency, "residual_pixels")[-1]
        m.d.comb += shortcut.i.valid.eq(at_block.valid & at_block.stride2)
        for k in range(4):
            for lane in range(pe):
                start = k * word_width + lane * FM_SHAPE.width
                m.d.comb += shortcut.i.payload.window[k][lane].eq(
                    block[start:start + FM_SHAPE.width])
        residual = Cat(Mux(at_merge.stride2, shortcut.o.payload.as_value(),
                           pixel_late[:word_width]), pixel_late[word_width:])
        m.d.comb += [
            merge.i.valid.eq(gate.o.valid),
            merge.i.payload.msb.eq(gate.o.payload.msb),
            merge.i.payload.gate.eq(gate.o.payload.gate),
            merge.i.payload.lsb.eq(lsb_sums[-1]),
            merge.i.payload.residual.eq(residual),
            merge.i.payload.row.eq(at_merge.row),
        ]

        # ---- write-back: FM codes, their 2-bit activations, and the head ------------------------
        out_tag, out_fm = tags[-1], merge.o.payload.fm.as_value()
        write_buffer = ~out_tag.read_buffer
        # The pixels written: the first, and the second with ``pair``. The FM buffers' write
        # ports take a pair from an even column: a beat of one pixel (a stride-2 layer's) writes
        # the pixel of its column's parity.
        out_pixels = Cat(out_tag.valid, out_tag.valid & out_tag.pair)[:pixels]
        if pixels == 2:
            fm_pixels = Mux(out_tag.pair, out_pixels, out_tag.valid << out_tag.x[0])
            fm_words = Mux(out_tag.pair, out_fm, Cat(out_fm[:word_width], out_fm[:word_width]))
        else:
            fm_pixels, fm_words = out_pixels, out_fm
        for index in range(2):
            m.d.comb += [
                fm_buffers[index].write.en.eq(Mux(write_buffer == index, fm_pixels, 0)),
                fm_buffers[index].write.y.eq(out_tag.y),
                fm_buffers[index].write.x.eq(out_tag.x),
                fm_buffers[index].write.group.eq(out_tag.group),
                fm_buffers[index].write.data.eq(fm_words),
            ]
        m.d.comb += [
            self.writeback.valid.eq(out_tag.valid),
            self.writeback.payload.layer.eq(out_tag.layer + 1),
            self.writeback.payload.y.eq(out_tag.y),
            self.writeback.payload.x.eq(out_tag.x),
            self.writeback.payload.group.eq(out_tag.group),
            self.writeback.payload.pixels.eq(Mux(out_tag.pair, 2, 1)),
            self.writeback.payload.fm.eq(out_fm),
            quantizer.i.valid.eq(out_tag.valid),
            quantizer.i.payload.fm.eq(out_fm),
            head.i.valid.eq(out_tag.valid & out_tag.head),
            head.i.payload.fm.eq(out_fm),
        ]
        q_tag = delay_line(m, out_tag, quantizer.latency, "q_tag")[-1]
        q_write_buffer = delay_line(m, write_buffer, quantizer.latency, "q_write_buffer")[-1]
        q_pixels = Cat(quantizer.o.valid, quantizer.o.valid & q_tag.pair)[:pixels]
        for index in range(2):
            m.d.comb += [
                q_buffers[index].write.en.eq(Mux(q_write_buffer == index, q_pixels, 0)),
                q_buffers[index].write.y.eq(q_tag.y3),
                q_buffers[index].write.x.eq(q_tag.xc),
                q_buffers[index].write.group.eq(q_tag.group),
                q_buffers[index].write.data.eq(Cat(quantizer.o.payload.q)),
            ]

        # ---- the stem's sequencer ---------------------------------------------------------------
        # Its buffer is ``FULL`` from the stem's drain until layer 0 of that image has issued its
        # last beat (``release_stem``); then the next image's stem may start.
        stem_wait = Signal(range(stem_drain + 1))
        release_stem = Signal()
        stem_started = Signal.like(self.cycles)     # the first pixel's ``now`` of the stem's image
        with m.FSM(name="stem_phase") as stem_fsm:
            with m.State("IDLE"):
                with m.If(image_ready):
                    m.d.sync += stem_started.eq(started[stem_buffer])
                    m.next = "ISSUE"
            with m.State("ISSUE"):
                m.d.comb += issue_stem.eq(1)
                m.d.sync += stem_og.eq(stem_og + 1)
                with m.If(stem_og == cfg.stem_groups - 1):
                    m.d.sync += [stem_og.eq(0), stem_j.eq(stem_j + 1), *_step(stem_j3, 1),
                                 *_step(stem_jc, 1, columns)]
                    with m.If(stem_j == IMAGE_SIZE - 1):
                        m.d.sync += [stem_j.eq(0), *_clear(stem_j3, stem_jc),
                                     stem_i.eq(stem_i + 1),
                                     *_step(stem_i3, 1)]
                        with m.If(stem_i == IMAGE_SIZE - 1):
                            m.d.sync += [stem_i.eq(0), *_clear(stem_i3), stem_wait.eq(stem_drain)]
                            m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.sync += stem_wait.eq(stem_wait - 1)
                with m.If(stem_wait == 0):
                    # The stem has read its count buffer: LOAD may fill it again.
                    m.d.comb += release_counts.eq(1)
                    m.d.sync += stem_buffer.eq(~stem_buffer)
                    m.next = "FULL"
            with m.State("FULL"):
                with m.If(release_stem):
                    m.next = "IDLE"
        stem_full = stem_fsm.ongoing("FULL")
        for phase in StemPhase:
            with m.If(stem_fsm.ongoing(phase.name)):
                m.d.comb += self.stem_phase.eq(phase)

        # ---- the layers' sequencer --------------------------------------------------------------
        # The first pixel's ``now`` of the image in the layers and of the image in the last layer
        # and the head: ``cycles`` counts for the latter until its logits are valid.
        layers_started, head_started = Signal.like(self.cycles), Signal.like(self.cycles)
        # An image is in the last layer or the head, its logits not handed over yet.
        in_head = Signal()
        with m.If(in_head & ~self.logits.valid):
            m.d.sync += self.cycles.eq(now + 1 - head_started)
        with m.If(self.logits.valid & self.logits.ready):
            m.d.sync += [self.images.eq(self.images + 1), in_head.eq(0)]
        # The next layer (``upcoming``) may start: its weights are decoded; layer 0 of the next
        # image also needs the stem to have drained it into the stem's buffers, the last layer
        # the head to have handed over the previous image's logits. All from registers.
        next_weights = weights.filled.bit_select(next_weight_buffer, 1)
        next_ready = next_weights & Mux(upcoming.reads_stem, stem_full,
                                        ~upcoming.last | head.i.ready)
        # The layer's beats still to issue after this one, and a register that marks its last
        # beat (set in the cycle before): the end of the layer is one register, not the scan's
        # four compares in series, on the paths into everything the next layer starts with.
        beats_left = Signal(range(max(plan.beats for plan in plans)))
        layer_end = Signal()
        m.d.sync += layer_end.eq(issue_layer & (beats_left == 1))
        with m.If(issue_layer):
            m.d.sync += beats_left.eq(beats_left - 1)

        def start_next():
            """The next layer or image: ``current`` becomes its constants (``upcoming``, looked
            up from ``layer``), the weight buffers move on."""
            m.d.sync += [current.eq(upcoming), beats_left.eq(upcoming.beats - 1),
                         *advance_weight_buffer()]
            with m.If(upcoming.reads_stem):
                m.d.sync += [layer.eq(0), layers_started.eq(stem_started)]
            with m.Else():
                m.d.sync += layer.eq(layer + 1)
            with m.If(upcoming.last):
                m.d.sync += [head_started.eq(layers_started), in_head.eq(1)]

        with m.FSM(name="phase") as fsm:
            with m.State("WAIT"):
                # Nothing issues: ``current`` takes the next layer's constants every cycle, so
                # that starting it (after ``next_ready``) enables none of their bits.
                m.d.sync += current.eq(upcoming)
                with m.If(next_ready):
                    start_next()
                    m.next = "LAYER"
            with m.State("LAYER"):
                # Loops, innermost first: input group cb, output group og, column j, row i.
                m.d.comb += issue_layer.eq(1)
                m.d.sync += cb.eq(cb + 1)
                with m.If(last_beat):
                    m.d.sync += [cb.eq(0), og.eq(og + 1)]
                    with m.If(og == groups_out - 1):
                        # The next column: a pair's two pixels on, a stride-2 window's centre
                        # two columns on.
                        m.d.sync += [og.eq(0), j.eq(j + Mux(pair, 2, 1)),
                                     *_step(jc, Mux(pair, 2, 1), columns),
                                     *_step(xc, Mux(stride2 | pair, 2, 1), columns)]
                        with m.If(j == last_column):
                            m.d.sync += [j.eq(0), *_clear(jc, xc), i.eq(i + 1), *_step(i3, 1),
                                         *_step(y3, Mux(stride2, 2, 1))]
                with m.If(layer_end):
                    # The layer's weight rows have been read: free their buffer; layer 0 has
                    # read the stem's buffers too.
                    m.d.comb += [weights.release.eq(1 << weight_buffer),
                                 release_stem.eq(reads_stem)]
                    m.d.sync += clear_scan
                    with m.If(next_ready):
                        start_next()
                    with m.Else():
                        m.next = "WAIT"
        for phase in Phase:
            with m.If(fsm.ongoing(phase.name)):
                m.d.comb += self.phase.eq(phase)
        loading = (loaded != 0) | full[0] | full[1]
        m.d.comb += [
            self.busy.eq(~fsm.ongoing("WAIT") | ~stem_fsm.ongoing("IDLE") | ~head.i.ready
                         | self.logits.valid | loading),
            self.layer.eq(layer + 1),
            self.beat.eq(cb),
        ]
        return m
