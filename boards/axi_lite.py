"""AXI4-Lite: the interface signature and a target (slave) that turns transactions into single
cycle register accesses.

This lives in ``boards/`` and not in ``rtl/`` on purpose: :func:`sim.accelerator.source_key`
hashes every module of ``rtl/``, so a file there would invalidate everybody's cached Verilator
build of the accelerator whenever it changed.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["OKAY", "SLVERR", "AXI4LiteSignature", "AXI4LiteTarget", "RegisterBusSignature"]

# AXI response codes (AXI spec, xRESP).
OKAY = 0b00
SLVERR = 0b10
DATA_WIDTH = 32
BYTES = DATA_WIDTH // 8


class AXI4LiteSignature(wiring.Signature):
    """An AXI4-Lite port, 32-bit data, seen from the manager (master): ``In(...)`` of it is a
    subordinate (slave) port. Members carry the AXI names (``awaddr``, ``awvalid``, ...), so an
    Amaranth port ``axi`` becomes the Verilog ports ``axi__awaddr`` and so on."""

    def __init__(self, addr_width):
        if not isinstance(addr_width, int) or not 3 <= addr_width <= 64:
            raise ValueError(f"AXI4-Lite address width must be an integer in 3..64, "
                             f"not {addr_width!r}")
        self.addr_width = addr_width
        super().__init__({
            "awaddr": Out(addr_width), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(DATA_WIDTH), "wstrb": Out(BYTES), "wvalid": Out(1), "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_width), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
            "rdata": In(DATA_WIDTH), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })

    def __eq__(self, other):
        return isinstance(other, AXI4LiteSignature) and other.addr_width == self.addr_width

    def __hash__(self):
        return hash((type(self), self.addr_width))

    def __repr__(self):
        return f"AXI4LiteSignature({self.addr_width})"


class RegisterBusSignature(wiring.Signature):
    """The register-access side of :class:`AXI4LiteTarget`, seen from the target (it initiates).

    * Write: in a cycle with ``w_en`` the word at ``w_addr`` is written with ``w_data``, the bytes
      selected by ``w_strb``; the register block answers in the same cycle with ``w_error``
      (combinational; 1 makes the response SLVERR).
    * Read: in a cycle with ``r_en`` the word at ``r_addr`` is read; the register block presents
      ``r_data`` and ``r_error`` in the **next** cycle (one cycle latency, so a synchronous memory
      read port can answer directly).

    Addresses are word addresses (the AXI byte address without its two low bits). A write and a
    read may happen in the same cycle.
    """

    def __init__(self, word_addr_width):
        self.word_addr_width = word_addr_width
        super().__init__({
            "w_en": Out(1), "w_addr": Out(word_addr_width), "w_data": Out(DATA_WIDTH),
            "w_strb": Out(BYTES), "w_error": In(1),
            "r_en": Out(1), "r_addr": Out(word_addr_width), "r_data": In(DATA_WIDTH),
            "r_error": In(1),
        })

    def __eq__(self, other):
        return (isinstance(other, RegisterBusSignature)
                and other.word_addr_width == self.word_addr_width)

    def __hash__(self):
        return hash((type(self), self.word_addr_width))


class AXI4LiteTarget(wiring.Component):
    """An AXI4-Lite subordinate that performs each transaction as one register-bus access.

    Ports: ``axi`` (``In(AXI4LiteSignature(addr_width))``) and ``bus``
    (``Out(RegisterBusSignature(addr_width - 2))``, see there for its timing).

    Protocol, per AXI4-Lite:

    * Write: the address (AW) and data (W) are accepted independently, in either order; once both
      are held the write happens on ``bus`` and the response (B) is offered: OKAY, or SLVERR when
      the register block raised ``w_error``. A new address or data beat is accepted only after the
      held one has been written, and a write waits while an earlier response has not been taken.
    * Read: an address (AR) is accepted when no read is in flight; the read happens on ``bus`` in
      the cycle of the AR handshake and the data (R) are offered two cycles after it with OKAY or
      SLVERR (``r_error``). ``rdata`` is held until the R handshake.

    The two low address bits are ignored (a narrower access selects its bytes through ``wstrb``,
    and the manager picks the bytes of a read), ``awprot``/``arprot`` are ignored. Every
    transaction gets a response: the target never waits on the register block.
    """

    def __init__(self, addr_width):
        self.addr_width = addr_width
        super().__init__({
            "axi": In(AXI4LiteSignature(addr_width)),
            "bus": Out(RegisterBusSignature(addr_width - 2)),
        })

    def elaborate(self, platform):
        m = Module()
        axi, bus = self.axi, self.bus

        # ---- write: hold AW and W until both are there, then write and respond -------------------
        aw_full, w_full = Signal(), Signal()
        aw_addr = Signal(self.addr_width - 2)
        w_data, w_strb = Signal(DATA_WIDTH), Signal(BYTES)
        b_valid, b_resp = Signal(), Signal(2)
        m.d.comb += [axi.awready.eq(~aw_full), axi.wready.eq(~w_full),
                     axi.bvalid.eq(b_valid), axi.bresp.eq(b_resp)]
        with m.If(axi.awvalid & ~aw_full):
            m.d.sync += [aw_full.eq(1), aw_addr.eq(axi.awaddr[2:])]
        with m.If(axi.wvalid & ~w_full):
            m.d.sync += [w_full.eq(1), w_data.eq(axi.wdata), w_strb.eq(axi.wstrb)]
        with m.If(b_valid & axi.bready):
            m.d.sync += b_valid.eq(0)
        # A response slot is free when none is pending or the pending one is taken now.
        write = aw_full & w_full & (~b_valid | axi.bready)
        m.d.comb += [bus.w_en.eq(write), bus.w_addr.eq(aw_addr), bus.w_data.eq(w_data),
                     bus.w_strb.eq(w_strb)]
        with m.If(write):
            m.d.sync += [aw_full.eq(0), w_full.eq(0), b_valid.eq(1),
                         b_resp.eq(Mux(bus.w_error, SLVERR, OKAY))]

        # ---- read: one in flight; the register block answers one cycle after r_en ---------------
        pending, r_valid = Signal(), Signal()
        r_data, r_resp = Signal(DATA_WIDTH), Signal(2)
        accept = ~pending & ~r_valid
        m.d.comb += [axi.arready.eq(accept), axi.rvalid.eq(r_valid), axi.rdata.eq(r_data),
                     axi.rresp.eq(r_resp),
                     bus.r_en.eq(axi.arvalid & accept), bus.r_addr.eq(axi.araddr[2:])]
        with m.If(bus.r_en):
            m.d.sync += pending.eq(1)
        with m.If(pending):
            # Latched here, so the register block may change r_data afterwards.
            m.d.sync += [pending.eq(0), r_valid.eq(1), r_data.eq(bus.r_data),
                         r_resp.eq(Mux(bus.r_error, SLVERR, OKAY))]
        with m.If(r_valid & axi.rready):
            m.d.sync += r_valid.eq(0)
        return m
