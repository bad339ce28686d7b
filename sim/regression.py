# amaranth: UnusedElaboratable=no
"""The RTL testbenches of the regression: which component, which cocotb module, which
parameters. Used by ``python -m sim`` and the pytest entry points.

The datapath units are simulated in groups (:class:`UnitGroup`: several independent units in
one top level, so one Verilator build serves them all): a group case's parameters map each unit
name to its constructor arguments. The units take their parameter tables from the bundled model
(so the public vectors' traces can be checked) plus rows of extreme values (the saturation
corners); the tables travel to the testbench in the parameters JSON, with the testbench-only
``bench`` entries.
"""

import importlib
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import wiring

from fracbnn_golden import FracBNN
from fracbnn_golden.fixedpoint import WT_MAX, WT_MIN
from fracbnn_golden.layers import TWO_THIRDS
from rtl.fixedpoint import PG_SUM_SHAPE, STEM_SUM_SHAPE
from rtl.gate import PrecisionGate
from rtl.head import Head
from rtl.merge import MERGE_PARAMS, MergeUnit
from rtl.quantizer import ActivationQuantizer
from rtl.shortcut import ShortcutPool
from rtl.tables import classifier, layer_thresholds, merge_columns, stem_batch_norm, stem_weight
from rtl.thermometer import InputBatchNorm, ThermometerConv, ThermometerEncoder
from rtl.xnor_popcount import XnorPopcountArray

from .runner import run, testbench_params
from .streams import StreamBench, quiet_streams

__all__ = [
    "SimCase", "REGRESSION", "UNIT_CASES", "UNIT_CLASSES", "UnitGroup", "unit_group",
    "build_unit", "xnor_popcount_case", "activation_case", "thermometer_case", "pg_case",
    "head_case", "group_bench",
]

# Attributes of the built component the testbench needs besides the constructor parameters
# (the XNOR-popcount array's; other cases name their own).
_DERIVED = ("acc_width", "groups", "latency")


@dataclass(frozen=True)
class SimCase:
    """A component factory, the cocotb test module and the parameters it is built with.

    ``params`` go to ``build``; the testbench gets them together with ``bench`` (entries for the
    testbench only) and the ``derived`` attributes of the built component.
    """

    name: str
    build: object
    test_module: str
    params: dict
    bench: dict = field(default_factory=dict)
    derived: tuple = _DERIVED

    def run(self, **kwargs):
        """Build and run this case with :func:`sim.runner.run` (keyword arguments pass on)."""
        component = self.build(**self.params)
        return run(component, self.test_module, self.testbench_params(component),
                   name=self.name, **kwargs)

    def testbench_params(self, component):
        return {**self.params, **self.bench,
                **{key: getattr(component, key) for key in self.derived}}

    def test_names(self):
        """The names of the cocotb tests :attr:`test_module` defines, in the order they run
        (the module is imported, nothing is simulated)."""
        module = importlib.import_module(self.test_module)
        return [test.name for item in vars(module).values() if hasattr(item, "generate_tests")
                for test in item.generate_tests()]


def xnor_popcount_case(pe, simd, max_beats=36, groups=1, popcount_stages=None):
    """An :class:`rtl.xnor_popcount.XnorPopcountArray` configuration under
    ``sim/tb_xnor_popcount.py``."""
    params = {"pe": pe, "simd": simd, "max_beats": max_beats, "groups": groups}
    if popcount_stages is not None:
        params["popcount_stages"] = popcount_stages
    name = f"xnor_popcount_pe{pe}_simd{simd}" + (f"_g{groups}" if groups > 1 else "")
    return SimCase(name, XnorPopcountArray, "sim.tb_xnor_popcount", params)


# ---- datapath units ----------------------------------------------------------------------------

# The unit names a group's parameters may use, and their classes.
UNIT_CLASSES = {
    "quantizer": ActivationQuantizer, "shortcut": ShortcutPool,
    "encoder": ThermometerEncoder, "conv": ThermometerConv, "input_bn": InputBatchNorm,
    "gate": PrecisionGate, "merge": MergeUnit,
    "head": Head, "small_head": Head,
}


def build_unit(name, kwargs):
    """The unit ``name`` of :data:`UNIT_CLASSES` built with ``kwargs`` (JSON values)."""
    return UNIT_CLASSES[name](**kwargs)


def forward_ports(m, outer, inner, prefix=""):
    """Connect every port ``p`` of the component ``inner`` to port ``prefix + p`` of ``outer``
    (a wrapper that re-exports it): streams (also one-dimensional arrays of them) with
    :func:`amaranth.lib.wiring.connect`, plain outputs outward and plain inputs inward."""
    for port, member in inner.signature.members.items():
        outside, inside = getattr(outer, prefix + port), getattr(inner, port)
        if member.is_signature and member.dimensions:       # an array of interfaces
            for index in range(member.dimensions[0]):
                wiring.connect(m, wiring.flipped(outside[index]), inside[index])
        elif member.is_signature:
            wiring.connect(m, wiring.flipped(outside), inside)
        elif member.flow == wiring.Out:
            m.d.comb += outside.eq(inside)
        else:
            m.d.comb += inside.eq(outside)


class UnitGroup(wiring.Component):
    """Independent units side by side in one top level, for one simulator build.

    Port ``p`` of unit ``name`` becomes port ``name_p`` (Verilog ``name_p__valid`` and so on);
    the units share the clock and reset and are not connected to each other.
    :attr:`latencies` holds the ``latency`` of every unit that documents one.
    """

    def __init__(self, units):
        self.units = dict(units)
        self.latencies = {name: unit.latency for name, unit in self.units.items()
                          if hasattr(unit, "latency")}
        super().__init__({f"{name}_{port}": member for name, unit in self.units.items()
                          for port, member in unit.signature.members.items()})

    def elaborate(self, platform):
        m = Module()
        for name, unit in self.units.items():
            m.submodules[name] = unit
            forward_ports(m, self, unit, prefix=f"{name}_")
        return m


def unit_group(**units):
    """A :class:`UnitGroup` from unit names and constructor arguments (a group case's build)."""
    return UnitGroup({name: build_unit(name, kwargs) for name, kwargs in units.items()})


def group_bench(dut, unit, **kwargs):
    """In a testbench of a :func:`unit_group` case: a :class:`sim.streams.StreamBench` on
    ``unit`` (keyword arguments pass on) with the other units' inputs held idle. The bench
    carries the unit's name as ``unit``, its constructor arguments as ``params``, its
    documented ``latency`` (None if it has none) and the case's testbench-only entries as
    ``bench_params``."""
    params = testbench_params()
    group = unit_group(**{name: params[name] for name in UNIT_CLASSES if name in params})
    quiet_streams(dut, group)
    bench = StreamBench(dut, group.units[unit], prefix=f"{unit}_", **kwargs)
    bench.unit, bench.params = unit, params[unit]
    bench.latency = params["latencies"].get(unit)
    bench.bench_params = params.get("bench", {})
    return bench


def _group_case(name, test_module, units, bench=None):
    return SimCase(name, unit_group, test_module, units, bench={"bench": bench or {}},
                   derived=("latencies",))


@cache
def _model():
    return FracBNN.default()


def _lists(array):
    return np.asarray(array).astype(int).tolist()


def _model_rows(layers, lanes, columns):
    """Rows of ``lanes`` output channels of each layer in turn: ``columns(layer)`` gives the
    per-channel table ``[cout, ...]``. Returns (``[rows, lanes, ...]``, {layer: first row})."""
    rows, first = [], {}
    for layer in layers:
        table = np.asarray(columns(layer))
        if len(table) % lanes:
            raise ValueError(f"{lanes} lanes do not divide the {len(table)} channels of {layer}")
        first[layer] = len(rows) // lanes
        rows.extend(table)
    rows = np.asarray(rows)
    return rows.reshape(-1, lanes, *rows.shape[1:]), first


def activation_case(lanes=4):
    """:class:`rtl.quantizer.ActivationQuantizer` and :class:`rtl.shortcut.ShortcutPool` under
    ``sim/tb_activation.py``."""
    return _group_case(f"units_activation_l{lanes}", "sim.tb_activation",
                       {"quantizer": {"lanes": lanes}, "shortcut": {"lanes": lanes}})


def thermometer_case(model_channels=tuple(range(16)), sum_width=STEM_SUM_SHAPE.width):
    """The input layer's units under ``sim/tb_thermometer.py``: the encoder (3 colours);
    :class:`rtl.thermometer.ThermometerConv` with conv1's kernels of ``model_channels``, then an
    all-ones and an all-zeros kernel (the largest sums of either sign; by default 18 channels,
    so its tables span full and partial memory words, :data:`rtl.thermometer.PORT_CHANNELS`);
    and :class:`rtl.thermometer.InputBatchNorm` with bn1's channels ``model_channels``, then two
    lanes with extreme scale and bias."""
    net = _model()
    channels = list(model_channels)
    weight = stem_weight(net)[channels]
    weight = np.concatenate([weight, np.ones_like(weight[:1]), np.zeros_like(weight[:1])])
    scale, bias = stem_batch_norm(net)
    scale = [*scale[channels], WT_MAX, WT_MIN]
    bias = [*bias[channels], WT_MIN, WT_MAX]
    return _group_case(f"units_thermometer_o{len(weight)}", "sim.tb_thermometer", {
        "encoder": {"colours": 3},
        "conv": {"weight": _lists(weight)},
        "input_bn": {"scale": _lists(scale), "bias": _lists(bias), "sum_width": sum_width},
    }, bench={"model_channels": channels})


# Stride 1, the first stride-2 conv (its gate is traced at every input position) and the last.
TRACE_LAYERS = ("layer1_0.conv2", "layer2_0.conv1", "layer3_2.conv2")
# Gate thresholds at the ends of the WT range, around 0 and on/next to multiples of 171 (where
# 171 * msb == tau: the gate is a strict comparison).
_G = TWO_THIRDS
_CORNER_TAUS = (WT_MIN, WT_MAX, 0, 1, -1, _G, -_G, _G - 1, -_G - 1, 2 * _G, 11 * _G, -11 * _G,
                11 * _G - 1, -11 * _G - 1, _G + 1, -_G + 1)

def pg_case(lanes=4, layers=TRACE_LAYERS, random_rows=2, seed=2021, pixels=1):
    """:class:`rtl.gate.PrecisionGate` and :class:`rtl.merge.MergeUnit` under
    ``sim/tb_pg.py``, with the thresholds and merge parameters of ``layers`` (rows of ``lanes``
    channels, in order) and corner rows after them: thresholds at the edges of the comparison;
    merge parameters all at the WT maximum, all at the minimum, then ``random_rows`` uniform.
    ``pixels`` output pixels per transfer."""
    net = _model()
    taus, first = _model_rows(layers, lanes, lambda layer: layer_thresholds(net, layer))
    corners = np.resize(np.array(_CORNER_TAUS), -(-len(_CORNER_TAUS) // lanes) * lanes)
    thresholds = np.concatenate([taus, corners.reshape(-1, lanes)])
    rows, _ = _model_rows(layers, lanes, lambda layer: merge_columns(net, layer))
    shape = (1, lanes, len(MERGE_PARAMS))
    rng = np.random.default_rng(seed)
    table = np.concatenate([rows, np.full(shape, WT_MAX), np.full(shape, WT_MIN),
                            rng.integers(WT_MIN, WT_MAX + 1, (random_rows, *shape[1:]))])
    return _group_case(f"units_pg_l{lanes}{_pixels_suffix(pixels)}", "sim.tb_pg", {
        "gate": {"lanes": lanes, "thresholds": _lists(thresholds),
                 "sum_width": PG_SUM_SHAPE.width, "pixels": pixels},
        "merge": {"lanes": lanes, "params": _lists(table), "sum_width": PG_SUM_SHAPE.width,
                  "pixels": pixels},
    }, bench={"trace_rows": first})


def head_case(lanes=16, small_lanes=4, small_positions=4, seed=96, pixels=1):
    """Two :class:`rtl.head.Head` under ``sim/tb_head.py``: ``head`` with the model's classifier
    (64 channels, 8x8 positions, ``lanes`` per transfer); ``small_head`` with 4 classes, 8
    channels, ``small_lanes`` per transfer, ``small_positions`` positions and extreme (classes
    0, 1) or random parameters, where the linear layer saturates easily. Both take ``pixels``
    positions per transfer."""
    model_weight, model_bias = classifier(_model())
    rng = np.random.default_rng(seed)
    weight = rng.integers(WT_MIN, WT_MAX + 1, (4, 8))
    weight[0], weight[1] = WT_MAX, WT_MIN
    bias = rng.integers(WT_MIN, WT_MAX + 1, 4)
    return _group_case(f"units_head_l{lanes}{_pixels_suffix(pixels)}", "sim.tb_head", {
        "head": {"weight": _lists(model_weight), "bias": _lists(model_bias), "lanes": lanes,
                 "positions": 64, "pixels": pixels},
        "small_head": {"weight": _lists(weight), "bias": _lists(bias), "lanes": small_lanes,
                       "positions": small_positions, "pixels": pixels},
    })


def _pixels_suffix(pixels):
    """The case name's mark of ``pixels`` pixels per transfer (none for one)."""
    return f"_p{pixels}" if pixels > 1 else ""


UNIT_CASES = [
    activation_case(),
    thermometer_case(),
    # The PG units and the head with one and with two output pixels per transfer; at two, the
    # small head is one channel group, so that its linear layer waits for the last transfer's
    # second position (Head.latency one more).
    pg_case(), pg_case(pixels=2), head_case(), head_case(pixels=2, small_lanes=8),
]

REGRESSION = [
    xnor_popcount_case(pe=4, simd=16),
    xnor_popcount_case(pe=2, simd=64),
    xnor_popcount_case(pe=3, simd=17, popcount_stages=0),
    xnor_popcount_case(pe=2, simd=18, groups=9),
    *UNIT_CASES,
]
