"""Precision gate: where a PG convolution needs its LSB pass (docs/architecture.md §2.7)."""

import numpy as np
from amaranth.hdl import Cat, Module, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from fracbnn_golden.fixedpoint import WT_BITS
from fracbnn_golden.layers import gate_threshold

from .fixedpoint import PG_SUM_SHAPE
from .params import check_positive_int, check_wt_codes
from .pipeline import lockstep_pipeline

__all__ = ["PrecisionGate"]


class PrecisionGate(wiring.Component):
    """The per-element gate ``171 * msb > tau`` of ``lanes`` output channels of ``pixels``
    output pixels.

    Since ``msb`` is an integer, the gate is ``msb > floor(tau / 171)``
    (:func:`fracbnn_golden.layers.gate_threshold`): the table holds that integer and the unit
    compares, with no multiplier. The ``pixels`` pixels of a transfer share the row: the table
    is read once per transfer and its ``lanes`` thresholds serve every pixel.

    Parameters
    ----------
    lanes : int
        Output channels per transfer.
    thresholds : int array ``[rows, lanes]``
        WT codes ``tau``; they fill a read-only memory of one row per group of ``lanes``
        channels.
    sum_width : int
        Width of the signed conv sums.
    pixels : int
        Output pixels per transfer, all of the same ``lanes`` channels (one threshold row).

    Members
    -------
    i : In(stream.Signature(StructLayout({"msb", "row"})))
        ``msb``: the MSB conv sums (``pixels * lanes`` x ``signed(sum_width)``; lane
        ``p * lanes + k`` is channel ``k`` of pixel ``p``); ``row``: the row of their
        channels' thresholds (one).
    o : Out(stream.Signature(StructLayout({"msb", "gate"})))
        ``gate`` bit ``k`` (``pixels * lanes`` bits) is the gate of lane ``k``, compared with
        threshold ``k % lanes``; ``msb`` passes the sums on.

    Protocol
    --------
    Streams with back-pressure, a lock-step pipeline (:func:`rtl.pipeline.lockstep_pipeline`).

    Latency
    -------
    :attr:`latency` = 2 cycles (table read, compare).
    """

    latency = 2

    def __init__(self, lanes, thresholds, sum_width=PG_SUM_SHAPE.width, pixels=1):
        check_positive_int("PrecisionGate", "lanes", lanes)
        check_positive_int("PrecisionGate", "sum_width", sum_width, minimum=2)
        check_positive_int("PrecisionGate", "pixels", pixels)
        thresholds = np.asarray(thresholds)
        if thresholds.ndim != 2 or thresholds.shape[1] != lanes or len(thresholds) == 0:
            raise ValueError(f"PrecisionGate thresholds must have shape [rows >= 1, {lanes}], "
                             f"not {list(thresholds.shape)}")
        check_wt_codes("PrecisionGate", "thresholds", thresholds)
        self.lanes = lanes
        self.pixels = pixels
        self.thresholds = gate_threshold(thresholds)
        sums = data.ArrayLayout(signed(sum_width), pixels * lanes)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"msb": sums,
                                                        "row": range(len(thresholds))}))),
            "o": Out(stream.Signature(data.StructLayout({"msb": sums,
                                                         "gate": pixels * lanes}))),
        })

    def elaborate(self, platform):
        m = Module()
        layout = data.ArrayLayout(signed(WT_BITS), self.lanes)
        init = [[int(v) for v in row] for row in self.thresholds]
        m.submodules.table = table = memory.Memory(shape=layout, depth=len(init), init=init)
        port = table.read_port()
        lanes = range(self.pixels * self.lanes)

        def read_threshold(payload):
            m.d.comb += port.addr.eq(payload.row)
            return {"msb": [payload.msb[k] for k in lanes]}

        def compare(stage):
            # Lane k is channel k % lanes: the pixels share the row read.
            gate = Cat(stage["msb"][k] > port.data[k % self.lanes] for k in lanes)
            return {"msb": stage["msb"], "gate": gate}

        advance = lockstep_pipeline(m, self.i, self.o, [read_threshold, compare])
        m.d.comb += port.en.eq(advance)
        return m
