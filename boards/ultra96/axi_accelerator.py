"""The accelerator behind an AXI4-Lite register interface (the map of
:mod:`boards.ultra96.registers`)."""

from amaranth.hdl import Cat, Const, Module, Mux, ResetInserter, Shape, Signal
from amaranth.lib import enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from boards.axi4 import AXI4Signature
from boards.axi_lite import AXI4LiteSignature, AXI4LiteTarget

from .dma import BatchDMA
from .registers import (
    ADDR_WIDTH,
    CLASSES,
    COUNT_BITS,
    DMA_ADDR_WIDTH,
    DMA_DATA_WIDTH,
    DST_ALIGN,
    ID_VALUE,
    IMAGE_BYTES,
    PIXELS,
    RECORD_BYTES,
    REGISTERS,
    SRC_ALIGN,
    VERSION_VALUE,
    field,
    register,
)

__all__ = ["AXILiteAccelerator", "check_core"]

PIXEL_BITS = 24
LOGIT_BITS = 16


class State(enum.Enum, shape=2):
    IDLE = 0
    STREAM = 1      # the image window goes into the accelerator's pixel stream
    COMPUTE = 2     # waiting for the logits


def check_core(core):
    """Raise ``TypeError`` unless ``core`` has the accelerator's port signature: ``pixels`` (an
    input stream of 24-bit payloads), ``logits`` (an output stream of ten 16-bit codes),
    ``cycles`` and ``images`` (32-bit outputs), ``busy`` and ``error`` (1-bit outputs)."""
    members = getattr(getattr(core, "signature", None), "members", None)
    if members is None:
        raise TypeError(f"the core must be an amaranth.lib.wiring.Component, not {core!r}")
    wanted = {
        "pixels": (In, True, PIXEL_BITS), "logits": (Out, True, CLASSES * LOGIT_BITS),
        "cycles": (Out, False, 32), "images": (Out, False, 32),
        "busy": (Out, False, 1), "error": (Out, False, 1),
    }
    problems = []
    for name, (flow, is_stream, width) in wanted.items():
        member = members[name] if name in members else None
        if member is None:
            problems.append(f"no port {name!r}")
            continue
        if is_stream:
            ok = (member.is_signature and isinstance(member.signature, stream.Signature)
                  and member.flow == flow
                  and Shape.cast(member.signature.members["payload"].shape).width == width)
        else:
            ok = member.is_port and member.flow == flow and Shape.cast(member.shape).width == width
        if not ok:
            kind = "stream" if is_stream else "port"
            problems.append(f"{name!r} must be an {flow.name} {kind} of {width} bits")
    if problems:
        raise TypeError(f"{type(core).__name__} does not look like the accelerator: "
                        + "; ".join(problems))


class AXILiteAccelerator(wiring.Component):
    """An accelerator-shaped ``core`` (see :func:`check_core`; e.g.
    :class:`rtl.accelerator.FracBNNAccelerator`) behind an AXI4-Lite subordinate port.

    Ports: ``axi`` (``In(AXI4LiteSignature(16))``, the register map of
    :mod:`boards.ultra96.registers`), ``dma`` (``Out(AXI4Signature(40, 128))``, the batch
    engine's manager port, :class:`boards.ultra96.dma.BatchDMA`), ``irq`` (the interrupt:
    ``IRQ_STATUS & IRQ_ENABLE`` not zero) and the status outputs ``busy``, ``done`` and
    ``error`` (``STATUS`` bits, e.g. for LEDs).

    Single images: the host writes an image into the 1024-word image window (a block RAM), then
    ``START``: the window is streamed into the core's ``pixels`` port, one pixel per cycle as
    fast as the core takes them, and the logits are captured from its ``logits`` stream (always
    ready), which sets ``DONE``. Batches: ``START_BATCH`` hands ``SRC``, ``DST`` and ``COUNT`` to
    the batch engine, which feeds the core from DDR and writes a record per image; the core's
    ``logits`` then wait for the engine. ``SOFT_RESET`` resets the core (through a reset
    inserted into its clock domain) and this block's sequencer one cycle after the write, and
    stops a batch; an error response to the batch engine resets the core the same way. The bus
    never waits on the core: every access is answered, commands that cannot be carried out with
    SLVERR.
    """

    def __init__(self, core):
        check_core(core)
        self.core = core
        super().__init__({
            "axi": In(AXI4LiteSignature(ADDR_WIDTH)),
            "dma": Out(AXI4Signature(DMA_ADDR_WIDTH, DMA_DATA_WIDTH)),
            "irq": Out(1),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        core = self.core
        m.submodules.target = target = AXI4LiteTarget(ADDR_WIDTH)
        wiring.connect(m, wiring.flipped(self.axi), target.axi)
        bus = target.bus

        m.submodules.dma = dma = BatchDMA()
        wiring.connect(m, dma.axi, wiring.flipped(self.dma))

        # Registered, so the reset of the whole core does not hang off the bus decoder's logic.
        soft_reset, core_reset = Signal(), Signal()
        m.submodules.core = ResetInserter(core_reset)(core)

        state = Signal(State)
        done = Signal()
        loading = state == State.STREAM
        busy = (state != State.IDLE) | dma.busy
        logits = [Signal(LOGIT_BITS, name=f"logit{k}") for k in range(CLASSES)]
        # The host's registers: (name, bits kept) for the read-write words.
        kept = {"SCRATCH": 32, "IRQ_ENABLE": len(register("IRQ_ENABLE").fields),
                "COUNT": COUNT_BITS, "SRC_LO": 32, "SRC_HI": DMA_ADDR_WIDTH - 32, "DST_LO": 32,
                "DST_HI": DMA_ADDR_WIDTH - 32}
        words = {name: Signal(bits, name=name.lower()) for name, bits in kept.items()}
        irq_status = Signal(len(register("IRQ_STATUS").fields))
        batch_cycles = Signal(32)
        m.d.comb += [self.busy.eq(busy), self.done.eq(done), self.error.eq(core.error),
                     self.irq.eq((irq_status & words["IRQ_ENABLE"]).any())]

        m.submodules.image = image = memory.Memory(shape=PIXEL_BITS, depth=PIXELS, init=[])
        image_write = image.write_port(granularity=8)
        image_read = image.read_port()

        def hits(name, addr):
            reg = register(name)
            base = reg.offset // 4
            return addr == base if reg.count == 1 else (addr >= base) & (addr < base + reg.count)

        def word_index(name, addr):
            return (addr - register(name).offset // 4)[:len(Const(register(name).count - 1))]

        # ---- the batch's buffers: START_BATCH is refused unless they make sense ----------------
        src = Cat(words["SRC_LO"], words["SRC_HI"])
        dst = Cat(words["DST_LO"], words["DST_HI"])
        count = words["COUNT"]
        # The two areas' sizes are registered when COUNT is written (from the written value, so
        # they change with it), the checks every cycle: the register target performs writes at
        # least two cycles apart, so a START_BATCH sees the words written before it.
        src_size = Signal(COUNT_BITS + (IMAGE_BYTES - 1).bit_length())
        dst_size = Signal(COUNT_BITS + (RECORD_BYTES - 1).bit_length())
        batch_refused = Signal()
        src_end, dst_end = src + src_size, dst + dst_size
        m.d.sync += batch_refused.eq(
            (count == 0)
            | (src[:(SRC_ALIGN - 1).bit_length()] != 0) | (dst[:(DST_ALIGN - 1).bit_length()] != 0)
            | (src_end > (1 << DMA_ADDR_WIDTH)) | (dst_end > (1 << DMA_ADDR_WIDTH))
            | ((src < dst_end) & (dst < src_end)))

        # ---- writes ---------------------------------------------------------------------------
        start_bit = field("CONTROL", "START").lsb
        reset_bit = field("CONTROL", "SOFT_RESET").lsb
        batch_bit = field("CONTROL", "START_BATCH").lsb
        addr, data, strb = bus.w_addr, bus.w_data, bus.w_strb
        control_write = bus.w_en & hits("CONTROL", addr) & strb[0]
        start = control_write & data[start_bit] & ~data[reset_bit]
        start_batch = control_write & data[batch_bit] & ~data[reset_bit]
        host_reset = control_write & data[reset_bit]
        m.d.sync += [soft_reset.eq(host_reset), core_reset.eq(host_reset | dma.flush)]
        # One command at a time (not both in one write, nothing while busy); a batch only with
        # sensible buffers. A refused command changes nothing.
        start_image = start & ~start_batch & ~busy
        m.d.comb += [dma.abort.eq(host_reset),
                     dma.start.eq(start_batch & ~start & ~busy & ~batch_refused),
                     dma.src.eq(src), dma.dst.eq(dst), dma.count.eq(words["COUNT"])]
        refused = {
            "CONTROL": (start | start_batch) & ~start_image & ~dma.start,
            "IMAGE": loading,                   # the window is being read
            **{name: Const(0) for name in (*kept, "IRQ_STATUS")},
        }
        writable = {reg.name for reg in REGISTERS if reg.writable}
        if set(refused) != writable:
            raise AssertionError(f"the RTL implements writes to {sorted(refused)}, the register "
                                 f"map has writable {sorted(writable)}")
        write_error = Const(1)                  # unmapped, unless a register below claims it
        for reg in REGISTERS:
            write_error = (write_error & ~hits(reg.name, addr)) | (
                hits(reg.name, addr) & (refused[reg.name] if reg.writable else 1))
        m.d.comb += bus.w_error.eq(write_error)

        with m.If(bus.w_en & hits("COUNT", addr)):
            # COUNT as this write leaves it (byte writes included).
            written = Cat(Mux(strb[byte], data[8 * byte:8 * byte + 8],
                              count[8 * byte:8 * byte + 8]) for byte in range(4))[:COUNT_BITS]
            m.d.sync += [src_size.eq(written * IMAGE_BYTES), dst_size.eq(written * RECORD_BYTES)]
        for name, word in words.items():
            with m.If(bus.w_en & hits(name, addr)):
                for byte in range(4):
                    with m.If(strb[byte]):
                        m.d.sync += word[8 * byte:8 * byte + 8].eq(data[8 * byte:8 * byte + 8])
        # IRQ_STATUS: set by the end of a batch, cleared by writing 1 (or SOFT_RESET).
        irq_clear = Mux(bus.w_en & hits("IRQ_STATUS", addr) & strb[0], data[:len(irq_status)], 0)
        batch_end = field("IRQ_STATUS", "BATCH_END").lsb
        m.d.sync += irq_status.eq(irq_status & ~irq_clear | (dma.ended << batch_end))
        m.d.comb += [
            image_write.addr.eq(word_index("IMAGE", addr)),
            image_write.data.eq(data[:PIXEL_BITS]),
            image_write.en.eq(strb[:PIXEL_BITS // 8]
                              & (bus.w_en & hits("IMAGE", addr) & ~loading).replicate(3)),
        ]

        # ---- reads: the value is registered at r_en, the bus takes it the cycle after ---------
        status_sources = {"BUSY": busy, "DONE": done, "ERROR": core.error, "LOADING": loading,
                          "BATCH": dma.busy, "BUS_ERROR": dma.fault}
        batch_error = Signal(32)
        for item, value in zip(register("BATCH_ERROR").fields,
                               (dma.fault_image, dma.fault_resp, dma.fault_write)):
            m.d.comb += batch_error[item.lsb:item.lsb + item.width].eq(value)
        status = Signal(32)
        for item in register("STATUS").fields:
            m.d.comb += status[item.lsb:item.lsb + item.width].eq(status_sources[item.name])
        values = {
            "ID": Const(ID_VALUE, 32), "VERSION": Const(VERSION_VALUE, 32), "STATUS": status,
            "CYCLES": core.cycles, "IMAGES": core.images, **words, "IRQ_STATUS": irq_status,
            "BATCH_IMAGES": dma.written, "BATCH_CYCLES": batch_cycles, "BATCH_ERROR": batch_error,
            # Signed, so the 32-bit read value is sign-extended.
            "LOGITS": [logit.as_signed() for logit in logits],
        }
        readable = {reg.name for reg in REGISTERS if reg.readable}
        if set(values) | {"IMAGE"} != readable:
            raise AssertionError(f"the RTL implements reads of {sorted(values)} and IMAGE, the "
                                 f"register map has readable {sorted(readable)}")
        r_value, r_error, r_from_image = Signal(32), Signal(), Signal()
        raddr = bus.r_addr
        with m.If(bus.r_en):
            m.d.sync += [r_value.eq(0), r_error.eq(1), r_from_image.eq(0)]
            with m.Switch(raddr):
                for reg in REGISTERS:
                    if reg.name == "IMAGE" or not reg.readable:
                        continue
                    words = values[reg.name]
                    words = words if isinstance(words, list) else [words]
                    for index, value in enumerate(words):
                        with m.Case(reg.address(index) // 4):
                            m.d.sync += [r_value.eq(value), r_error.eq(0)]
                with m.Default():
                    with m.If(hits("IMAGE", raddr)):
                        m.d.sync += [r_error.eq(loading), r_from_image.eq(~loading)]
        m.d.comb += [bus.r_data.eq(r_value), bus.r_error.eq(r_error)]
        with m.If(r_from_image):
            m.d.comb += bus.r_data.eq(image_read.data)

        # ---- the sequencer: stream the window in, wait for the logits --------------------------
        issued = Signal(range(PIXELS + 1))       # window words read for the stream so far
        out_valid = Signal()                     # image_read.data holds a pixel not yet taken
        advance = ~out_valid | core.pixels.ready
        # In a batch the core is fed by the batch engine and its results go to the engine.
        m.d.comb += [
            core.pixels.valid.eq(Mux(dma.busy, dma.pixels.valid, out_valid)),
            core.pixels.payload.eq(Mux(dma.busy, dma.pixels.payload, image_read.data)),
            dma.pixels.ready.eq(core.pixels.ready),
            core.logits.ready.eq(Mux(dma.busy, dma.results.ready, 1)),
            dma.results.valid.eq(core.logits.valid & dma.busy),
            dma.results.payload.logits.eq(core.logits.payload.as_value()),
            dma.results.payload.cycles.eq(core.cycles),
        ]
        with m.If(loading):
            # The read port holds its data while en is low, i.e. while the core stalls.
            m.d.comb += [image_read.en.eq(advance), image_read.addr.eq(issued)]
        with m.Else():
            m.d.comb += [image_read.en.eq(bus.r_en & hits("IMAGE", raddr)),
                         image_read.addr.eq(word_index("IMAGE", raddr))]

        with m.If(core.logits.valid):
            m.d.sync += [logit.eq(core.logits.payload.as_value()[k * LOGIT_BITS:
                                                                 (k + 1) * LOGIT_BITS])
                         for k, logit in enumerate(logits)]
        with m.Switch(state):
            with m.Case(State.IDLE):
                with m.If(start_image):
                    m.d.sync += [state.eq(State.STREAM), issued.eq(0), out_valid.eq(0),
                                 done.eq(0)]
            with m.Case(State.STREAM):
                with m.If(advance):
                    m.d.sync += out_valid.eq(issued < PIXELS)
                    with m.If(issued < PIXELS):
                        m.d.sync += issued.eq(issued + 1)
                # With one pixel register, all issued and one valid: it is the last pixel.
                with m.If(out_valid & core.pixels.ready & (issued == PIXELS)):
                    m.d.sync += [state.eq(State.COMPUTE), out_valid.eq(0)]
            with m.Case(State.COMPUTE):
                with m.If(core.logits.valid):
                    m.d.sync += [state.eq(State.IDLE), done.eq(1)]
        # ---- batches --------------------------------------------------------------------------
        with m.If(dma.start):
            m.d.sync += [done.eq(0), batch_cycles.eq(1)]
        with m.Elif(dma.busy):
            m.d.sync += batch_cycles.eq(batch_cycles + 1)
        with m.If(dma.ended & ~dma.fault):
            m.d.sync += done.eq(1)
        with m.If(soft_reset):
            m.d.sync += [state.eq(State.IDLE), out_valid.eq(0), done.eq(0), irq_status.eq(0)]
        return m
