"""2-bit activation quantiser: FM codes to the MSB/LSB bit planes of the PG convolutions."""

from amaranth.hdl import Module, Mux, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .fixedpoint import FM_SHAPE
from .params import check_positive_int
from .pipeline import lockstep_pipeline

__all__ = ["ActivationQuantizer"]


def quantize_expr(fm):
    """``clamp(floor((x + 1) * 1.5 + 1/2), 0, 3)`` of an FM code (docs/architecture.md §2.6).

    In codes: ``((fm + 128) * 384 + 2**14) >> 15 == ((fm + 128) * 3 + 128) >> 8``: a shift-add,
    no multiplier.
    """
    shifted = fm + 128
    level = (shifted + (shifted << 1) + 128) >> 8
    return Mux(level < 0, 0, Mux(level > 3, 3, level))[:2]


class ActivationQuantizer(wiring.Component):
    """``lanes`` FM codes per transfer to their 2-bit activations and bit planes.

    Parameters
    ----------
    lanes : int
        Channels per transfer.

    Members
    -------
    i : In(stream.Signature(StructLayout({"fm": ArrayLayout(FM_SHAPE, lanes)})))
        ``fm[k]``: the signed 16-bit FM code of lane ``k``.
    o : Out(stream.Signature(StructLayout({"q", "msb", "lsb"})))
        ``q[k]`` (0..3, :func:`quantize_expr`) and its bit planes ``msb[k] = q >> 1`` and
        ``lsb[k] = q & 1``.

    Protocol
    --------
    Streams with back-pressure, a lock-step pipeline (:func:`rtl.pipeline.lockstep_pipeline`).

    Latency
    -------
    :attr:`latency` = 1 cycle.
    """

    latency = 1

    def __init__(self, lanes):
        check_positive_int("ActivationQuantizer", "lanes", lanes)
        self.lanes = lanes
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "fm": data.ArrayLayout(FM_SHAPE, lanes)}))),
            "o": Out(stream.Signature(data.StructLayout({
                "q": data.ArrayLayout(unsigned(2), lanes),
                "msb": lanes,
                "lsb": lanes,
            }))),
        })

    def elaborate(self, platform):
        m = Module()

        def quantize(payload):
            q = [quantize_expr(payload.fm[k]) for k in range(self.lanes)]
            return {"q": q, "msb": [level[1] for level in q], "lsb": [level[0] for level in q]}

        lockstep_pipeline(m, self.i, self.o, [quantize])
        return m
