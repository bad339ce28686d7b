"""Stride-2 shortcut of a residual block: 2x2 average pool (docs/architecture.md §2.9)."""

from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from fracbnn_golden.fixedpoint import FM_BITS

from .fixedpoint import FM_SHAPE, saturate, trunc_div_pow2
from .params import check_positive_int
from .pipeline import lockstep_pipeline

__all__ = ["ShortcutPool"]


class ShortcutPool(wiring.Component):
    """2x2 average of ``lanes`` channels, bit-exact with :func:`fracbnn_golden.layers.shortcut`.

    The four values of a lane are added in row-major order, saturating to FM after each
    addition, and the sum is divided by 4 truncating toward zero. The shortcut's channel
    duplication (``cat(x, x)``: output channels ``c`` and ``c + C`` are both pooled channel
    ``c``) needs no logic: ``o.payload.fm`` holds each pooled channel once and a consumer of
    channel ``c + C`` reads lane ``c``.

    Parameters
    ----------
    lanes : int
        Channels per transfer.

    Members
    -------
    i : In(stream.Signature(StructLayout({"window": ...})))
        ``window[j][k]`` (FM codes, 4 x ``lanes``) is pixel ``j`` of the 2x2 window (row-major:
        (0,0), (0,1), (1,0), (1,1)) of lane ``k``.
    o : Out(stream.Signature(StructLayout({"fm": ArrayLayout(FM_SHAPE, lanes)})))
        The pooled FM codes.

    Protocol
    --------
    Streams with back-pressure, a lock-step pipeline (:func:`rtl.pipeline.lockstep_pipeline`).

    Latency
    -------
    :attr:`latency` = 2 cycles.
    """

    latency = 2

    def __init__(self, lanes):
        check_positive_int("ShortcutPool", "lanes", lanes)
        self.lanes = lanes
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "window": data.ArrayLayout(data.ArrayLayout(FM_SHAPE, lanes), 4)}))),
            "o": Out(stream.Signature(data.StructLayout({
                "fm": data.ArrayLayout(FM_SHAPE, lanes)}))),
        })

    def elaborate(self, platform):
        m = Module()
        lanes = range(self.lanes)

        def first_half(payload):
            window = payload.window
            partial = [saturate(saturate(window[0][k] + window[1][k], FM_BITS) + window[2][k],
                                FM_BITS) for k in lanes]
            return {"partial": partial, "last": [window[3][k] for k in lanes]}

        def second_half(stage):
            pooled = [trunc_div_pow2(saturate(stage["partial"][k] + stage["last"][k], FM_BITS), 2)
                      for k in lanes]
            return {"fm": pooled}

        lockstep_pipeline(m, self.i, self.o, [first_half, second_half])
        return m
