"""The batch engine: an AXI4 manager that reads images from DDR into a two-image prefetch
buffer, feeds the accelerator from it one pixel per cycle, and writes each image's result back.

The memory layouts (the host's arrays as they are) and the limits are in
:mod:`boards.ultra96.registers`; :class:`boards.ultra96.axi_accelerator.AXILiteAccelerator`
puts this engine behind the register map.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from boards.axi4 import BURST_INCR, OKAY, AXI4Signature, burst_size

from .registers import (
    BEAT_BYTES,
    CLASSES,
    COUNT_BITS,
    DMA_ADDR_WIDTH,
    DMA_DATA_WIDTH,
    IMAGE_BYTES,
    MAX_BURST_BEATS,
    PIXELS,
    RECORD_BYTES,
)

__all__ = ["BatchDMA", "IMAGE_BEATS", "PREFETCH_IMAGES", "READ_AHEAD_BEATS", "RESULT_LAYOUT"]

PIXEL_BITS = 24
LOGIT_BITS = 16
PLANE_BEATS = PIXELS // BEAT_BYTES              # 64 beats per colour plane
IMAGE_BEATS = IMAGE_BYTES // BEAT_BYTES         # 192 beats per image
RECORD_BEATS = RECORD_BYTES // BEAT_BYTES       # 2 beats per result record
# Images the prefetch buffer holds: the one being fed to the core and the next one.
PREFETCH_IMAGES = 2
# Read beats requested and not yet received, at most (8 bursts of 16): enough to cover the
# HP port's latency at one beat per cycle, and what the block design declares.
READ_AHEAD_BEATS = 8 * MAX_BURST_BEATS
# AxCACHE: normal non-cacheable bufferable (the buffers are uncached or flushed by the host).
AXCACHE = 0b0011
# The page an INCR burst must not cross (AXI rule).
PAGE_BYTES = 4096

RESULT_LAYOUT = data.StructLayout({
    "logits": data.ArrayLayout(LOGIT_BITS, CLASSES), "cycles": 32})


class BatchDMA(wiring.Component):
    """Runs a batch: ``count`` images from ``src`` through the accelerator, records to ``dst``.

    Members
    -------
    axi : Out(AXI4Signature(40, 128))
        The manager port (the PS's ``S_AXI_HP0_FPD`` through the block design).
    start : In(1)
        A one-cycle command: latch ``src``, ``dst`` and ``count`` and run the batch. Ignored while
        ``busy`` (the register interface refuses it then).
    abort : In(1)
        A one-cycle command: stop the batch (``SOFT_RESET``). No new transaction is issued, the
        outstanding ones are completed (the port is left idle), then ``busy`` drops, without
        ``ended``.
    src, dst : In(40)
        Byte addresses: ``src`` 16-byte aligned (the images, :data:`IMAGE_BYTES` each),
        ``dst`` 32-byte aligned (the records, :data:`RECORD_BYTES` each).
    count : In(20)
        Images in the batch, at least 1.
    pixels : Out(stream.Signature(24))
        To the core: the images' pixels in order, red in bits 7:0, green 15:8, blue 23:16.
    results : In(stream.Signature(RESULT_LAYOUT))
        From the core: each image's logits and cycle count.
    busy : Out(1)
        A batch is running or being stopped.
    ended : Out(1)
        One-cycle pulse: the batch is over, all records written or stopped by an error response
        (then ``fault`` is set); the port is idle.
    flush : Out(1)
        One-cycle pulse when an error response stops the batch: reset the core (its image is
        abandoned).
    fault : Out(1)
        The last batch was stopped by an error response (cleared by ``start`` and ``abort``).
    fault_image, fault_resp, fault_write : Out(20), Out(2), Out(1)
        Which image's read or write (``fault_write``) got which response (SLVERR ``0b10``,
        DECERR ``0b11``): the first error of the batch.
    written : Out(20)
        Records written (and acknowledged) in this batch.

    Protocol
    --------
    Every transaction has ID 0, so reads and writes each complete in order. Reads: the images
    are one contiguous area; bursts of at most :data:`MAX_BURST_BEATS` beats never cross a
    4 KiB page. A burst is requested only when the prefetch buffer has room for it and at most
    :data:`READ_AHEAD_BEATS` minus one burst are outstanding (so never more than
    :data:`READ_AHEAD_BEATS`), so ``rready`` is always 1. A request waits at least one cycle
    after the previous one's address handshake (the next length is registered). An image is
    fed to the core once all its beats are in; its slot is reused once the core has taken its
    last pixel. Writes: one 2-beat burst per record, the next record only after
    the previous one's response; ``bready`` is always 1.

    Latency
    -------
    In a batch the core's next image is in the buffer long before the core finishes the current
    one (192 beats against the core's thousands of cycles per image), so the core takes a pixel
    in every cycle it is ready and a batch takes ``count`` times the core's interval plus the
    first image's fetch and the last record's write.
    """

    def __init__(self):
        super().__init__({
            "axi": Out(AXI4Signature(DMA_ADDR_WIDTH, DMA_DATA_WIDTH)),
            "start": In(1), "abort": In(1),
            "src": In(DMA_ADDR_WIDTH), "dst": In(DMA_ADDR_WIDTH), "count": In(COUNT_BITS),
            "pixels": Out(stream.Signature(PIXEL_BITS)),
            "results": In(stream.Signature(RESULT_LAYOUT)),
            "busy": Out(1), "ended": Out(1), "flush": Out(1),
            "fault": Out(1), "fault_image": Out(COUNT_BITS), "fault_resp": Out(2),
            "fault_write": Out(1), "written": Out(COUNT_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        axi = self.axi
        running = Signal()          # issuing and feeding
        stopping = Signal()         # stopped: completing the outstanding transactions
        aborted = Signal()          # stopped by ``abort`` (no ``ended``)
        m.d.comb += self.busy.eq(running | stopping)

        # ---- the prefetch buffer: one memory per colour plane, a slot per image -----------------
        # Beat b of an image is plane b // 64, word b % 64: pixels 16 (b % 64) .. 16 (b % 64) + 15.
        planes = []
        for colour in range(3):
            plane = memory.Memory(shape=DMA_DATA_WIDTH, depth=PREFETCH_IMAGES * PLANE_BEATS,
                                  init=[])
            m.submodules[f"plane{colour}"] = plane
            planes.append((plane.write_port(), plane.read_port()))

        # ---- reader: AR requests ----------------------------------------------------------------
        ar_next = Signal(DMA_ADDR_WIDTH)                        # address of the next request
        ar_left = Signal(COUNT_BITS + 8)                        # beats still to request
        space = Signal(range(PREFETCH_IMAGES * IMAGE_BEATS + 1))  # buffer beats not requested
        in_flight = Signal(range(READ_AHEAD_BEATS + 1))          # requested, not yet received
        ar_valid = Signal()
        page_offset = ar_next[4:12]                             # beat within the 4 KiB page
        to_page_end = Signal(range(PAGE_BYTES // BEAT_BYTES + 1))
        m.d.comb += to_page_end.eq(PAGE_BYTES // BEAT_BYTES - page_offset)
        capped = Mux(to_page_end < MAX_BURST_BEATS, to_page_end, MAX_BURST_BEATS)
        # The next burst's length, registered (for the clock): it is stale for the cycle after
        # a request or a start, which moved ar_next and ar_left.
        burst = Signal(range(MAX_BURST_BEATS + 1))
        burst_fresh = Signal()
        m.d.sync += burst.eq(Mux(ar_left < capped, ar_left, capped))
        # The read-ahead limit is checked against its worst case (a full burst), a constant
        # compare: a request leaves at most READ_AHEAD_BEATS beats outstanding.
        issue = (running & ~ar_valid & burst_fresh & (burst != 0) & (burst <= space)
                 & (in_flight <= READ_AHEAD_BEATS - MAX_BURST_BEATS))
        m.d.sync += burst_fresh.eq(~issue & ~self.start)
        m.d.comb += [
            axi.arvalid.eq(ar_valid), axi.arsize.eq(burst_size(DMA_DATA_WIDTH)),
            axi.arburst.eq(BURST_INCR), axi.arcache.eq(AXCACHE), axi.arprot.eq(0),
            axi.rready.eq(1),
        ]
        with m.If(issue):
            m.d.sync += [ar_valid.eq(1), axi.araddr.eq(ar_next), axi.arlen.eq(burst - 1),
                         ar_next.eq(ar_next + burst * BEAT_BYTES), ar_left.eq(ar_left - burst)]
        with m.If(axi.arvalid & axi.arready):
            m.d.sync += ar_valid.eq(0)

        # ---- reader: R beats into the buffer ----------------------------------------------------
        r_beat = Signal(range(IMAGE_BEATS))         # beat within the image being received
        r_slot = Signal(range(PREFETCH_IMAGES))
        r_image = Signal(COUNT_BITS)                # image being received
        filled = Signal(range(PREFETCH_IMAGES + 1))  # complete images in the buffer, not yet fed
        beat_in = axi.rvalid                         # rready is always 1
        for colour, (write, _) in enumerate(planes):
            m.d.comb += [write.addr.eq(Cat(r_beat[:6], r_slot)), write.data.eq(axi.rdata),
                         write.en.eq(beat_in & running & (r_beat[6:] == colour))]
        image_in = beat_in & (r_beat == IMAGE_BEATS - 1)
        with m.If(beat_in):
            m.d.sync += r_beat.eq(Mux(r_beat == IMAGE_BEATS - 1, 0, r_beat + 1))
            with m.If(r_beat == IMAGE_BEATS - 1):
                m.d.sync += [r_slot.eq(r_slot + 1), r_image.eq(r_image + 1)]

        # ---- feeder: the buffer into the core, one pixel per cycle ------------------------------
        f_slot = Signal(range(PREFETCH_IMAGES))
        issued = Signal(range(PIXELS + 1))          # pixels of the current image read so far
        out_valid = Signal()                        # the read ports hold a pixel not yet taken
        lane = Signal(4)                            # its byte in the 16-byte words
        advance = ~out_valid | self.pixels.ready
        feeding = running & (filled != 0)
        rgb = []
        for _, read in planes:
            m.d.comb += [read.addr.eq(Cat(issued[4:10], f_slot)), read.en.eq(advance)]
            rgb.append(read.data.word_select(lane, 8))
        m.d.comb += [self.pixels.valid.eq(out_valid & running),
                     self.pixels.payload.eq(Cat(*rgb))]
        image_out = Signal()                        # the core took an image's last pixel
        with m.If(feeding & advance):
            m.d.sync += out_valid.eq(issued < PIXELS)
            with m.If(issued < PIXELS):
                m.d.sync += [issued.eq(issued + 1), lane.eq(issued[:4])]
        with m.If(out_valid & self.pixels.ready & (issued == PIXELS)):
            m.d.comb += image_out.eq(running)
            m.d.sync += [out_valid.eq(0), issued.eq(0), f_slot.eq(f_slot + 1)]

        # Buffer accounting: requested beats take space, fed images give it back.
        m.d.sync += [
            space.eq(space - Mux(issue, burst, 0) + Mux(image_out, IMAGE_BEATS, 0)),
            in_flight.eq(in_flight + Mux(issue, burst, 0) - beat_in),
            filled.eq(filled + image_in - image_out),
        ]

        # ---- writer: a record per result --------------------------------------------------------
        record = Signal(2 * DMA_DATA_WIDTH)
        w_busy = Signal()                           # a record captured, its response not in
        aw_valid, w_valid, w_beat = Signal(), Signal(), Signal(range(RECORD_BEATS))
        w_image = Signal(COUNT_BITS)
        w_addr = Signal(DMA_ADDR_WIDTH)
        count = Signal(COUNT_BITS)
        take = self.results.valid & self.results.ready
        m.d.comb += [
            self.results.ready.eq(running & ~w_busy),
            axi.awvalid.eq(aw_valid), axi.awaddr.eq(w_addr), axi.awlen.eq(RECORD_BEATS - 1),
            axi.awsize.eq(burst_size(DMA_DATA_WIDTH)), axi.awburst.eq(BURST_INCR),
            axi.awcache.eq(AXCACHE), axi.awprot.eq(0),
            axi.wvalid.eq(w_valid), axi.wdata.eq(record.word_select(w_beat, DMA_DATA_WIDTH)),
            axi.wstrb.eq(Const(-1, DMA_DATA_WIDTH // 8)), axi.wlast.eq(w_beat == RECORD_BEATS - 1),
            axi.bready.eq(1),
        ]
        with m.If(take):
            # logits (20 bytes), cycles, the image's index in the batch, a reserved zero word.
            m.d.sync += [record.eq(Cat(self.results.payload.logits, self.results.payload.cycles,
                                       w_image, Const(0, 32 - COUNT_BITS), Const(0, 32))),
                         w_busy.eq(1), aw_valid.eq(1), w_valid.eq(1), w_beat.eq(0)]
        with m.If(axi.awvalid & axi.awready):
            m.d.sync += aw_valid.eq(0)
        with m.If(axi.wvalid & axi.wready):
            m.d.sync += w_beat.eq(w_beat + 1)
            with m.If(w_beat == RECORD_BEATS - 1):
                m.d.sync += w_valid.eq(0)
        response_in = axi.bvalid & w_busy
        write_ok = response_in & (axi.bresp == OKAY)
        with m.If(response_in):
            m.d.sync += [w_busy.eq(0), w_image.eq(w_image + 1),
                         w_addr.eq(w_addr + RECORD_BYTES)]
        with m.If(write_ok):
            m.d.sync += self.written.eq(self.written + 1)

        # ---- errors, the end of a batch, start and abort ----------------------------------------
        read_error = beat_in & (axi.rresp != OKAY)
        write_error = response_in & (axi.bresp != OKAY)
        with m.If(running & (read_error | write_error)):
            # The first error stops the batch; the core's image is abandoned.
            m.d.sync += [running.eq(0), stopping.eq(1), self.fault.eq(1),
                         self.fault_write.eq(~read_error),
                         self.fault_image.eq(Mux(read_error, r_image, w_image)),
                         self.fault_resp.eq(Mux(read_error, axi.rresp, axi.bresp)),
                         out_valid.eq(0)]
            m.d.comb += self.flush.eq(1)
        with m.Elif(running & write_ok & (w_image == count - 1)):
            m.d.sync += running.eq(0)
            m.d.comb += self.ended.eq(1)
        # Stopping: wait until nothing is outstanding (the request being offered, the beats
        # requested, the record being written), then the port is idle.
        quiet = ~ar_valid & (in_flight == 0) & ~w_busy
        with m.If(stopping & quiet):
            m.d.sync += stopping.eq(0)
            m.d.comb += self.ended.eq(~aborted)

        with m.If(self.abort):
            m.d.sync += [running.eq(0), stopping.eq(self.busy), aborted.eq(1),
                         self.fault.eq(0), out_valid.eq(0)]
        with m.Elif(self.start & ~self.busy):
            m.d.sync += [
                running.eq(1), aborted.eq(0), self.fault.eq(0), self.written.eq(0),
                ar_next.eq(self.src), ar_left.eq(self.count * IMAGE_BEATS),
                w_addr.eq(self.dst), count.eq(self.count), w_image.eq(0),
                r_beat.eq(0), r_slot.eq(0), r_image.eq(0), f_slot.eq(0), issued.eq(0),
                out_valid.eq(0), space.eq(PREFETCH_IMAGES * IMAGE_BEATS), filled.eq(0),
            ]
        return m
