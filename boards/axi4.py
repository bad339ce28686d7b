"""AXI4 (full): the interface signature of a manager (master).

Like :mod:`boards.axi_lite` this lives outside ``rtl/`` so that editing it does not invalidate
the accelerator's cached simulation builds.
"""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BURST_INCR", "DECERR", "OKAY", "SLVERR", "AXI4Signature", "burst_size"]

# AXI response codes (xRESP) and the incrementing burst type (AxBURST).
OKAY = 0b00
SLVERR = 0b10
DECERR = 0b11
BURST_INCR = 0b01


def burst_size(data_width):
    """AxSIZE of full-width beats: log2 of the bytes per beat."""
    return (data_width // 8).bit_length() - 1


class AXI4Signature(wiring.Signature):
    """An AXI4 port seen from the manager: ``Out(...)`` of it is a manager port. Members carry
    the AXI names (``awaddr``, ``arlen``, ...); there are no lock, QoS, region or user signals.
    ``awcache``/``arcache`` and ``awprot``/``arprot`` are there because the Zynq UltraScale+'s
    HP ports use them.

    Parameters
    ----------
    addr_width : int
        Address bits (the Zynq UltraScale+ PS: 40 for its physical addresses).
    data_width : int
        Data bits: a power of two from 32 to 1024.
    id_width : int
        Bits of ``awid``, ``bid``, ``arid``, ``rid`` (at least 1: verification models such as
        cocotbext-axi's need the ID signals even from a manager that always uses ID 0).
    """

    def __init__(self, addr_width, data_width, id_width=1):
        if not isinstance(addr_width, int) or not 12 <= addr_width <= 64:
            raise ValueError(f"AXI4 address width must be an integer in 12..64, "
                             f"not {addr_width!r}")
        if data_width not in (32, 64, 128, 256, 512, 1024):
            raise ValueError(f"AXI4 data width must be a power of two from 32 to 1024, "
                             f"not {data_width!r}")
        if not isinstance(id_width, int) or not 1 <= id_width <= 32:
            raise ValueError(f"AXI4 ID width must be an integer in 1..32, not {id_width!r}")
        self.addr_width, self.data_width, self.id_width = addr_width, data_width, id_width
        address = {"id": Out(id_width), "addr": Out(addr_width), "len": Out(8), "size": Out(3),
                   "burst": Out(2), "cache": Out(4), "prot": Out(3), "valid": Out(1),
                   "ready": In(1)}
        super().__init__({
            **{f"aw{name}": member for name, member in address.items()},
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wlast": Out(1),
            "wvalid": Out(1), "wready": In(1),
            "bid": In(id_width), "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            **{f"ar{name}": member for name, member in address.items()},
            "rid": In(id_width), "rdata": In(data_width), "rresp": In(2), "rlast": In(1),
            "rvalid": In(1), "rready": Out(1),
        })

    def __eq__(self, other):
        return (isinstance(other, AXI4Signature) and other.addr_width == self.addr_width
                and other.data_width == self.data_width and other.id_width == self.id_width)

    def __hash__(self):
        return hash((type(self), self.addr_width, self.data_width, self.id_width))

    def __repr__(self):
        return f"AXI4Signature({self.addr_width}, {self.data_width}, {self.id_width})"
