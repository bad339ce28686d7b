"""The Ultra96 top level: the processing system's block design, the accelerator behind its
AXI4-Lite interface with its AXI4 batch master and interrupt, and two LEDs."""

from amaranth.hdl import (
    ClockDomain,
    ClockSignal,
    Elaboratable,
    Instance,
    Module,
    ResetSignal,
    Signal,
)
from amaranth.lib import io, wiring

from boards.axi_lite import AXI4LiteSignature

from .axi_accelerator import AXILiteAccelerator
from .block_design import WRAPPER
from .registers import ADDR_WIDTH

__all__ = ["Ultra96Top"]


class Ultra96Top(Elaboratable):
    """``accelerator`` (an :class:`AXILiteAccelerator`) in the ``sync`` domain, which runs on the
    PS's ``pl_clk0`` (``clock_mhz``) and is reset by ``pl_resetn0`` (synchronised by the block
    design's ``proc_sys_reset``). The PS reaches ``accelerator.axi`` through the block design's
    ``M_AXI`` port; ``accelerator.dma`` reaches the DDR through its ``S_AXI`` port
    (``S_AXI_HP0_FPD``) and ``accelerator.irq`` drives its ``irq`` port (``pl_ps_irq0``).
    LED D9 blinks about once a second while the clock runs (the bitstream is loaded and the PS
    clocks the PL); LED D10 lights on ``STATUS.ERROR``.
    """

    def __init__(self, accelerator, clock_mhz):
        if not isinstance(accelerator, AXILiteAccelerator):
            raise TypeError(f"the accelerator must be an AXILiteAccelerator, not {accelerator!r}")
        self.accelerator, self.clock_mhz = accelerator, clock_mhz

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        m.submodules.accelerator = accelerator = self.accelerator
        clock, reset_n = Signal(), Signal()
        ports = {"o_pl_clk0": clock, "o_peripheral_aresetn": reset_n}
        # The wrapper's AXI ports are M_AXI_<name>; the PS is the manager. awprot/arprot stay
        # unconnected (the target ignores them).
        for name, member in AXI4LiteSignature(ADDR_WIDTH).members.items():
            if name in ("awprot", "arprot"):
                continue
            direction = "o" if member.flow == wiring.Out else "i"
            ports[f"{direction}_M_AXI_{name}"] = getattr(accelerator.axi, name)
        # S_AXI_<name>: the accelerator is the manager.
        for name, member in accelerator.dma.signature.members.items():
            direction = "i" if member.flow == wiring.Out else "o"
            ports[f"{direction}_S_AXI_{name}"] = getattr(accelerator.dma, name)
        ports["i_irq"] = accelerator.irq
        m.submodules.ps = Instance(WRAPPER, **ports)
        m.d.comb += [ClockSignal("sync").eq(clock), ResetSignal("sync").eq(~reset_n)]

        # About 1 Hz at the configured clock: the top bit of a counter toggles every 2^(n-1).
        bits = max(2, round(self.clock_mhz * 1e6).bit_length())
        heartbeat = Signal(bits)
        m.d.sync += heartbeat.eq(heartbeat + 1)
        if platform is not None:
            for number, value in ((0, heartbeat[-1]), (1, accelerator.error)):
                m.submodules[f"led{number}"] = led = io.Buffer(
                    "o", platform.request("led", number, dir="-"))
                m.d.comb += led.o.eq(value)
        return m
