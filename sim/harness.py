"""A simulation top level around the accelerator that takes whole image rows and gives results.

Driving the accelerator's pixel stream and watching its logit stream from a cocotb testbench
costs Python work in every clock cycle, which is slower than the simulated design itself. The
:class:`AcceleratorHarness` moves that per-cycle work into the simulated design: a row FIFO in
front (a testbench writes 32 pixels at a time and only when there is room) and a result FIFO
behind (logits and cycle count of each image), so a testbench runs once per row and once per
image. The harness is simulation-only; it never goes into a synthesised design.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from fracbnn_golden.model import IMAGE_SHAPE

__all__ = ["AcceleratorHarness"]

ROW_PIXELS = IMAGE_SHAPE[2]
ROWS = IMAGE_SHAPE[1]
# The ports that come first in the harness (and its waveform view), in this order: the core's
# status, the results, the feature-map writes, the rows.
# ``done_cycle`` counts a whole batch (2**32 cycles: over 200,000 images).
DONE_CYCLE_BITS = 32
WAVE_ORDER = ("phase", "stem_phase", "layer", "beat", "busy", "cycles", "images", "error",
              "results", "writeback", "stem_writeback", "rows", "bulk")


class AcceleratorHarness(wiring.Component):
    """The accelerator ``core`` with its ports, plus bulk row input and result output.

    :attr:`wave_names` names the layers in waveforms (:mod:`sim.gtkw`): 0 is the stem, ``l + 1``
    PG layer ``l``.

    Parameters
    ----------
    core : FracBNNAccelerator
        The design under test; it becomes the submodule ``core``.
    images_ahead : int
        Images the row FIFO holds, so that the next image is already inside while one is
        being loaded and pixels reach the core in every cycle.
    results_ahead : int
        Results the result FIFO holds before the core waits for the testbench.

    Members
    -------
    bulk : In(1)
        The mode (see Protocol).
    rows : In(stream.Signature(ArrayLayout(pixel, 32)))
        One image row per transfer, pixel ``x`` in element ``x``.
    results : Out(stream.Signature(StructLayout({"logits", "cycles", "done_cycle"})))
        Per image: the logits as the core gave them, its ``cycles`` at that moment (the image's
        latency) and ``done_cycle``, the cycle in which the core gave them, counted from the
        batch's first pixel transfer (cycle 0). Successive ``done_cycle`` differences are the
        interval between images.
    pixels, logits, cycles, images, busy, error, phase, stem_phase, layer, beat, writeback, \
    stem_writeback
        The core's members (``pixels`` and ``logits`` only used while ``bulk`` is 0).

    Protocol
    --------
    With ``bulk`` 1 the core's pixels come from ``rows`` and its logits go to ``results``; with
    0 the core's own streams are the harness's ``pixels`` and ``logits`` (for tests that drive
    them cycle by cycle, with gaps and stalls). Change ``bulk`` only while the core is idle.

    Latency
    -------
    In bulk mode the core sees a pixel in every cycle from the second cycle after the first row
    is written, as long as the testbench keeps the FIFO from running empty, so the core's
    ``cycles`` are those of back-to-back images; its logits enter the result FIFO in the cycle
    they become valid as long as the FIFO has room, so ``done_cycle`` is the core's own timing.
    """

    def __init__(self, core, *, images_ahead=2, results_ahead=4):
        self.core = core
        self.plans, self.config = core.plans, core.config
        self.images_ahead, self.results_ahead = images_ahead, results_ahead
        layers = {0: "stem", **{index + 1: plan.name for index, plan in enumerate(core.plans)}}
        self.wave_names = {"layer": layers, "writeback.layer": layers,
                           "stem_writeback.layer": layers}
        members = core.signature.members
        pixel = members["pixels"].signature.members["payload"].shape
        logits = members["logits"].signature.members["payload"].shape
        ports = {
            "bulk": In(1),
            "rows": In(stream.Signature(data.ArrayLayout(pixel, ROW_PIXELS))),
            "results": Out(stream.Signature(data.StructLayout({
                "logits": logits, "cycles": members["cycles"].shape,
                "done_cycle": DONE_CYCLE_BITS}))),
            **dict(members.items()),
        }
        # In the order a waveform shows them (WAVE_ORDER first).
        super().__init__({**{name: ports[name] for name in WAVE_ORDER if name in ports},
                          **ports})

    def elaborate(self, platform):
        m = Module()
        core = self.core
        m.submodules.core = core
        # Every core output and output stream except the two streams the harness can take over.
        for name, member in core.signature.members.items():
            if name in ("pixels", "logits"):
                continue
            if member.is_signature:
                wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(core, name))
            elif member.flow == Out:
                m.d.comb += getattr(self, name).eq(getattr(core, name))

        row_width = len(self.rows.payload.as_value())
        m.submodules.row_fifo = row_fifo = fifo.SyncFIFOBuffered(
            width=row_width, depth=self.images_ahead * ROWS)
        m.d.comb += [
            row_fifo.w_data.eq(self.rows.payload),
            row_fifo.w_en.eq(self.rows.valid),
            self.rows.ready.eq(row_fifo.w_rdy),
        ]
        # The row at the FIFO's head goes out pixel by pixel.
        column = Signal(range(ROW_PIXELS))
        pixel_width = row_width // ROW_PIXELS
        bulk_pixel = row_fifo.r_data.word_select(column, pixel_width)
        pixel_taken = self.bulk & row_fifo.r_rdy & core.pixels.ready
        with m.If(pixel_taken):
            m.d.sync += column.eq(Mux(column == ROW_PIXELS - 1, 0, column + 1))
        m.d.comb += [
            row_fifo.r_en.eq(pixel_taken & (column == ROW_PIXELS - 1)),
            core.pixels.valid.eq(Mux(self.bulk, row_fifo.r_rdy, self.pixels.valid)),
            core.pixels.payload.eq(Mux(self.bulk, bulk_pixel, self.pixels.payload.as_value())),
            self.pixels.ready.eq(~self.bulk & core.pixels.ready),
        ]

        # The batch's clock: 0 in the cycle of the first bulk pixel transfer, then counting.
        batch_cycle = Signal(DONE_CYCLE_BITS)
        counting = Signal()
        with m.If(counting | pixel_taken):
            m.d.sync += [batch_cycle.eq(batch_cycle + 1), counting.eq(1)]

        result_width = len(self.results.payload.as_value())
        m.submodules.result_fifo = result_fifo = fifo.SyncFIFOBuffered(
            width=result_width, depth=self.results_ahead)
        m.d.comb += [
            result_fifo.w_data.eq(Cat(core.logits.payload, core.cycles, batch_cycle)),
            result_fifo.w_en.eq(self.bulk & core.logits.valid),
            core.logits.ready.eq(Mux(self.bulk, result_fifo.w_rdy, self.logits.ready)),
            self.logits.valid.eq(~self.bulk & core.logits.valid),
            self.logits.payload.eq(core.logits.payload),
            self.results.valid.eq(result_fifo.r_rdy),
            self.results.payload.eq(result_fifo.r_data),
            result_fifo.r_en.eq(self.results.ready),
        ]
        return m
