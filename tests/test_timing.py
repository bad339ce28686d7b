# amaranth: UnusedElaboratable=no
"""The timing estimate (:mod:`synth.timing`): hand-made netlists whose longest paths are known,
the delay table against the routed paths it is drawn from (:mod:`synth.validation`), the report
parser (:mod:`synth.vivado_paths`) and one real Yosys run."""

import json
import math
import re
from pathlib import Path

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from synth.delays import DELAYS, SCENARIOS, SOURCES, Figure, delay, fanout_key, markdown_table
from synth.timing import TARGET_MHZ, TIMING_KEYS, Netlist, TimingGraph, analyse, timing_summary
from synth.validation import (
    NETLIST_VALIDATION_FILE,
    load_paths,
    path_estimate,
    routed_period,
    routed_statistics,
    summary,
    validate,
)
from synth.vivado_paths import parse_report
from synth.yosys import Design, synthesize

ARCHITECTURE = Path(__file__).parent.parent / "docs" / "architecture.md"


class NetlistBuilder:
    """A Yosys-style JSON module built by hand: cells with their connections, ports, names."""

    def __init__(self):
        self.cells, self.ports, self.netnames = {}, {}, {}
        self._next = 2

    def bits(self, count=1):
        first = self._next
        self._next += count
        return list(range(first, first + count))

    def bit(self):
        return self.bits()[0]

    def name(self, name, bits):
        self.netnames[name] = {"hide_name": 0, "bits": list(bits)}

    def cell(self, name, kind, inputs, outputs, **parameters):
        """A cell: ``inputs``/``outputs`` map a port to a bit or a list of bits."""
        listed = {port: bits if isinstance(bits, list) else [bits]
                  for port, bits in {**inputs, **outputs}.items()}
        self.cells[name] = {
            "hide_name": 0, "type": kind,
            "parameters": {key: (format(value, "032b") if isinstance(value, int) else value)
                           for key, value in parameters.items()},
            "port_directions": {**dict.fromkeys(inputs, "input"),
                                **dict.fromkeys(outputs, "output")},
            "connections": listed,
        }

    def port(self, name, direction, bits):
        self.ports[name] = {"direction": direction, "bits": list(bits)}

    def ff(self, name, d, kind="FDRE"):
        """A flip-flop clocked by ``clk``; its output bit is named ``name``."""
        q = self.bit()
        reset = {"FDRE": "R", "FDSE": "S", "FDCE": "CLR", "FDPE": "PRE"}[kind]
        self.cell(f"{name}_reg", kind, {"C": self.clk, "CE": "1", "D": d, reset: "0"},
                  {"Q": q})
        self.name(name, [q])
        return q

    def lut(self, name, inputs):
        out = self.bit()
        self.cell(name, f"LUT{len(inputs)}",
                  {f"I{n}": bit for n, bit in enumerate(inputs)}, {"O": out})
        return out

    @property
    def clk(self):
        if "clk" not in self.ports:
            self.port("clk", "input", self.bits())
        return self.ports["clk"]["bits"][0]

    def netlist(self):
        return Netlist("top", self.ports, self.cells, self.netnames)


def d(key, scenario="nominal"):
    return delay(key, scenario)


def reg_to_reg(scenario="nominal"):
    """The fixed part of a flip-flop to flip-flop path: clock to Q, setup, uncertainty."""
    return d("ff.clk_to_q", scenario) + d("ff.setup_d", scenario) \
        + d("clock.uncertainty", scenario)


# -- The delay table -------------------------------------------------------------------------------

def test_every_figure_has_a_known_source_and_grows_from_fast_to_slow():
    for key, figure in DELAYS.items():
        assert figure.source in SOURCES, key
        assert figure.fast <= figure.nominal <= figure.slow, key
        assert figure.note, key
    with pytest.raises(ValueError, match="'guess'"):
        Figure(0.1, 0.2, 0.3, "guess", "")
    with pytest.raises(ValueError, match="shrink"):
        Figure(0.3, 0.2, 0.1, "routed", "")
    with pytest.raises(KeyError, match="'typical'"):
        DELAYS["lut.o6"]["typical"]
    with pytest.raises(KeyError, match="'lut.o7'"):
        delay("lut.o7", "nominal")


def test_fanout_classes():
    assert fanout_key(1) == "net.fanout_1"
    assert fanout_key(4) == "net.fanout_2_4"
    assert fanout_key(5) == "net.fanout_5_16"
    assert fanout_key(64) == "net.fanout_17_64"
    assert fanout_key(10_000) == "net.fanout_65_up"
    with pytest.raises(ValueError, match="not 0"):
        fanout_key(0)


def test_routed_figures_are_the_statistics_of_the_routed_paths():
    # "Facts defined once": the table's routed figures are what the reference paths give.
    stats = routed_statistics(load_paths())
    routed = {key for key, figure in DELAYS.items() if figure.source == "routed"}
    assert routed <= set(stats)
    for key in routed:
        figure = DELAYS[key]
        assert (figure.fast, figure.nominal, figure.slow) == (
            stats[key]["fast"], stats[key]["nominal"], stats[key]["slow"]), key


def test_carry_in_to_sum_grows_per_bit():
    # CI to O[j] of a CARRY8 (0.072 ns at j = 0 to 0.146 ns at j = 7 on the routed paths).
    sums = [d(("carry.ci_to_o", j)) for j in range(8)]
    assert sums == sorted(sums) and sums[0] == d("carry.ci_to_o")
    assert sums[7] == pytest.approx(0.072 + 7 * d("carry.ci_per_bit"))
    assert 0.12 <= sums[7] <= 0.17
    with pytest.raises(KeyError, match="'carry.s_to_o', 3"):
        delay(("carry.s_to_o", 3), "nominal")


def test_issue_figures_are_reproduced():
    # The figures quoted from public routed reports: FDRE clock to Q 0.096 ns, a DSP48E2 with
    # no internal register about 1.9 ns, CARRY8 S to CO[7] 0.20..0.25 ns.
    assert d("ff.clk_to_q") == pytest.approx(0.096)
    dsp = sum(d(key) for key in ("dsp.in_ab", "dsp.preadd", "dsp.mult", "dsp.m_data",
                                 "dsp.alu", "dsp.out_p"))
    assert dsp == pytest.approx(1.92, abs=0.01)
    assert 0.19 <= d("carry.s_to_co", "fast") <= d("carry.s_to_co", "slow") <= 0.25


def test_validation_against_routed_paths():
    rows = validate(load_paths())
    result = summary(rows)
    assert result["paths"] == len(rows) >= 25
    # The nominal scenario is centred on the routed periods; the slow one bounds nearly all.
    assert 0.85 <= result["nominal"]["median"] <= 1.15
    assert result["within_fast_slow"] >= 0.9 * result["paths"]
    assert result["slow"]["median"] < 1 < result["fast"]["median"]


def _section():
    text = ARCHITECTURE.read_text()
    return text[text.index("### 8.5"):text.index("## 9.")]


def test_documented_error_bars_are_the_validation_figures():
    # docs/architecture.md §8.5 quotes the path and netlist validations as the code gives them.
    section = " ".join(_section().split())
    paths = load_paths()
    netlists = [row for row in json.loads(NETLIST_VALIDATION_FILE.read_text())
                if "skipped" not in row]
    assert len(netlists) == len(paths)
    for result in (summary(validate(paths)), summary(netlists)):
        for scenario in SCENARIOS:
            ratio = result[scenario]
            quoted = f"{ratio['median']:.2f} ({ratio['min']:.2f}..{ratio['max']:.2f}) {scenario}"
            assert quoted in section, quoted
        assert f"between the fast and the slow estimate for {result['within_fast_slow']} of " \
            f"{result['paths']}" in section
    nominal = summary(netlists)["nominal"]
    assert f"between {1 / nominal['max']:.2f} F and {1 / nominal['min']:.2f} F" in section
    periods = [routed_period(path) for path in paths]
    assert f"paths of {min(periods):.1f} to {max(periods):.1f} ns" in section
    assert f"the {len(paths)} distinct routed setup paths" in section


def test_documented_delay_table_is_the_model():
    assert markdown_table() in _section()


def test_path_estimate_of_a_recorded_path():
    path = {
        "source": "test", "slack_ns": 1.0, "requirement_ns": 4.0, "data_path_ns": 0.5,
        "skew_ns": 0.0, "uncertainty_ns": 0.035,
        "elements": [
            {"cell": "FDRE", "arc": "Prop_AFF_SLICEL_C_Q", "delay": 0.096},
            {"net": 3, "delay": 0.2},
            {"cell": "LUT6", "arc": "Prop_A6LUT_SLICEL_I0_O", "delay": 0.17},
            {"net": 1, "delay": 0.01},
            {"cell": "CARRY8", "arc": "Prop_CARRY8_SLICEL_S[0]_CO[7]", "delay": 0.24},
            {"net": 1, "delay": 0.028},
            {"cell": "CARRY8", "arc": "Prop_CARRY8_SLICEL_CI_O[7]", "delay": 0.146},
            {"net": 1, "delay": 0.05},
        ],
        "setup": {"cell": "FDRE", "arc": "Setup_BFF_SLICEL_C_D", "delay": 0.027},
    }
    expected = (d("ff.clk_to_q") + d("net.fanout_2_4") + d("lut.o6") + d("net.lut_to_carry")
                + d("carry.s_to_co") + d("net.carry") + d(("carry.ci_to_o", 7))
                + d("net.fanout_1"))
    estimate = path_estimate(path, "nominal")
    assert estimate["data_path_ns"] == pytest.approx(expected)
    assert estimate["period_ns"] == pytest.approx(
        expected + d("ff.setup_d") + d("clock.uncertainty"))


# -- The report parser -----------------------------------------------------------------------------

REPORT = """\
Slack (MET) :             2.152ns  (required time - arrival time)
  Source:                 fsm/out_reg[2]/C
  Requirement:            5.000ns  (clk rise@5.000ns - clk rise@0.000ns)
  Data Path Delay:        0.560ns  (logic 0.300ns (50%)  route 0.260ns (50%))
  Clock Path Skew:        -0.012ns (DCD - SCD + CPR)
  Clock Uncertainty:      0.035ns  ((TSJ^2 + TIJ^2)^1/2 + DJ) / 2 + PE

    Location             Delay type                Incr(ns)  Path(ns)    Netlist Resource(s)
  -------------------------------------------------------------------    -------------------
                         (clock clk rise edge)        0.000     0.000 r
                         net (fo=196, unset)          0.037     0.037    fsm/clk
    SLICE_X16Y11         FDRE                                         r  fsm/out_reg[2]/C
  -------------------------------------------------------------------    -------------------
    SLICE_X16Y11         FDRE (Prop_CFF_SLICEM_C_Q)
                                                      0.095     0.132 f  fsm/out_reg[2]/Q
                         net (fo=19, routed)          0.306     0.438    fsm/x
    SLICE_X18Y11         LUT4 (Prop_D5LUT_SLICEL_I0_O)
                                                      0.193     0.631 r  fsm/y/O
                         net (fo=1, routed)           0.010     0.641    fsm/z
    SLICE_X23Y6          FDRE                                         r  mac/pipe2/out_reg[31]/D
  -------------------------------------------------------------------    -------------------

                         (clock clk rise edge)        5.000     5.000 r
    SLICE_X23Y6          FDRE (Setup_HFF_SLICEL_C_D)
                                                      0.027     5.017    mac/pipe2/out_reg[31]
  -------------------------------------------------------------------
                         slack                                  2.152

Slack:                    inf
  Source:                 a
"""


def test_parse_report():
    (path,) = parse_report(REPORT)
    assert path["slack_ns"] == 2.152 and path["requirement_ns"] == 5.0
    assert path["data_path_ns"] == 0.56 and path["skew_ns"] == -0.012
    assert [e.get("cell") or e["net"] for e in path["elements"]] == ["FDRE", 19, "LUT4", 1]
    assert path["elements"][2] == {"cell": "LUT4", "arc": "Prop_D5LUT_SLICEL_I0_O",
                                   "delay": 0.193}
    assert path["setup"]["arc"] == "Setup_HFF_SLICEL_C_D"
    # An unrouted net makes the path unusable as a reference.
    assert parse_report(REPORT.replace("(fo=1, routed)", "(fo=1, unplaced)")) == []


# -- Hand-made netlists ----------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [1, 3, 7])
def test_lut_chain(depth):
    net = NetlistBuilder()
    bit = net.ff("start", net.bit())
    for n in range(depth):
        bit = net.lut(f"lut{n}", [bit])
    net.ff("finish", bit)
    results = analyse(net.netlist())
    for scenario in SCENARIOS:
        expected = reg_to_reg(scenario) + depth * d("lut.o6", scenario) \
            + (depth + 1) * d("net.fanout_1", scenario)
        assert results[scenario].period_ns == pytest.approx(expected)
    summary_ = timing_summary(net.netlist())
    assert set(summary_) == set(TIMING_KEYS)
    assert summary_["logic_levels"] == {"lut": depth, "carry": 0, "muxf": 0, "dsp": 0}
    assert summary_["critical_path"]["start"] == "start"
    assert summary_["critical_path"]["end"] == "finish"
    assert summary_["fmax_mhz_nominal"] == pytest.approx(
        1000 / results["nominal"].period_ns, abs=0.05)
    steps = summary_["critical_path"]["steps"]
    assert [s["cell"] for s in steps] == ["FDRE"] + ["LUT1"] * depth + ["FDRE"]
    assert steps[-1]["arrival_ns"] == pytest.approx(results["nominal"].period_ns, abs=1e-3)


def test_the_longest_of_two_paths_and_fanout():
    # Two paths into one LUT: one direct, one through four LUTs; the shared start fans out to
    # twenty loads.
    net = NetlistBuilder()
    start = net.ff("start", net.bit())
    loads = [net.lut(f"load{n}", [start]) for n in range(19)]
    bit = loads[0]
    for n in range(4):
        bit = net.lut(f"long{n}", [bit])
    end = net.lut("join", [start, bit])
    net.ff("finish", end)
    for n, load in enumerate(loads[1:]):
        net.ff(f"sink{n}", load)
    result = analyse(net.netlist())["nominal"]
    expected = reg_to_reg() + d("net.fanout_17_64") + 6 * d("lut.o6") + 6 * d("net.fanout_1")
    assert result.period_ns == pytest.approx(expected)
    assert result.endpoints == 19  # finish and the 18 sinks


def test_lut_arcs_follow_the_equation():
    # A LUT6_2 whose O5 is I0 AND I1 and whose O6 is the parity of I0..I2: a path from a
    # register into I2 reaches O6 but not O5. A LUT2 whose INIT ignores I1 has no arc from it.
    net = NetlistBuilder()
    a, b, c = (net.ff(name, net.bit()) for name in "abc")
    o6, o5 = net.bit(), net.bit()
    and_table = sum(1 << n for n in range(32) if n & 3 == 3)
    parity_table = sum(1 << n for n in range(32) if bin(n & 7).count("1") % 2)
    net.cell("dual", "LUT6_2", {"I0": a, "I1": b, "I2": c, "I3": "0", "I4": "0", "I5": "1"},
             {"O6": o6, "O5": o5}, INIT=format((parity_table << 32) | and_table, "064b"))
    net.ff("sum", o6)
    net.ff("majority", o5)
    follower = net.bit()
    net.cell("buffer", "LUT2", {"I0": a, "I1": c}, {"O": follower}, INIT="1010")
    net.ff("copy", follower)
    graph = TimingGraph(net.netlist())
    assert graph.evaluate("nominal").endpoints == 3
    reaching = {name: sorted(graph.bit_name(arc[0]) for arc in graph.fanin[node])
                for name, node in (("majority", o5), ("sum", o6), ("copy", follower))}
    assert reaching == {"majority": ["a", "b"], "sum": ["a", "b", "c"], "copy": ["a"]}


def carry_adder(kind, cells, dual=False):
    """A register-to-register adder chain of ``cells`` carry cells: a LUT (fanout 1) into S[0]
    of the first, the top sum of the last into a register."""
    bits = 4 if kind == "CARRY4" else 8
    net = NetlistBuilder()
    start = net.ff("a", net.bit())
    select = net.lut("xor0", [start])
    carry_in = "0"
    sums = None
    for n in range(cells):
        s = [select if (n == 0 and i == 0) else "0" for i in range(bits)]
        sums, carries = net.bits(bits), net.bits(bits)
        ports = {"CI": carry_in, "DI": ["0"] * bits, "S": s}
        if kind == "CARRY4":
            ports["CYINIT"] = "0"
        params = {"CARRY_TYPE": "DUAL_CY4" if dual else "SINGLE_CY8"} if kind == "CARRY8" else {}
        net.cell(f"carry{n}", kind, ports, {"O": sums, "CO": carries}, **params)
        carry_in = carries[-1]
    net.ff("sum", sums[-1])
    return net


@pytest.mark.parametrize("cells", [2, 4, 8])
def test_carry4_chain(cells):
    # 4 * cells bits on CARRY4 (as Yosys maps adders): CARRY4 is half a CARRY8.
    result = analyse(carry_adder("CARRY4", cells).netlist())["nominal"]
    expected = (reg_to_reg() + d("net.fanout_1") + d("lut.o6") + d("net.lut_to_carry")
                + d("carry.s_to_co") + (cells - 1) * 0.5 * d("net.carry")
                + (cells - 2) * 0.5 * d("carry.ci_to_co") + d(("carry.ci_to_o", 3))
                + d("net.fanout_1"))
    assert result.period_ns == pytest.approx(expected)
    assert result.levels() == {"lut": 1, "carry": math.ceil(cells / 2), "muxf": 0, "dsp": 0}


@pytest.mark.parametrize("cells", [2, 5])
def test_carry8_chain(cells):
    result = analyse(carry_adder("CARRY8", cells).netlist())["nominal"]
    expected = (reg_to_reg() + d("net.fanout_1") + d("lut.o6") + d("net.lut_to_carry")
                + d("carry.s_to_co") + (cells - 1) * d("net.carry")
                + (cells - 2) * d("carry.ci_to_co") + d(("carry.ci_to_o", 7))
                + d("net.fanout_1"))
    assert result.period_ns == pytest.approx(expected)
    # 32 bits and more: the carry chain is a small part of the path.
    assert result.levels()["carry"] == cells


def test_carry_reaches_only_the_bits_above():
    # S[5] of a CARRY8 reaches O[5..7] and CO[5..7], never O[2]; CI_TOP of a DUAL_CY4 only
    # bits 4..7, CI only bits 0..3.
    for dual in (False, True):
        net = NetlistBuilder()
        a = net.ff("a", net.bit())
        top = net.ff("top", net.bit())
        sums, carries = net.bits(8), net.bits(8)
        net.cell("carry", "CARRY8",
                 {"CI": "0", "CI_TOP": top if dual else "0", "DI": ["0"] * 8,
                  "S": ["0"] * 5 + [a, "0", "0"]},
                 {"O": sums, "CO": carries}, CARRY_TYPE="DUAL_CY4" if dual else "SINGLE_CY8")
        net.ff("low", sums[2])
        net.ff("high", sums[6])
        graph = TimingGraph(net.netlist())
        result = graph.evaluate("nominal")
        assert result.endpoints == 1  # high (low: no path)
        assert result.path()[-1]["signal"] == "high"
        assert result.path()[0]["signal"] == "a"
    # In DUAL_CY4 the lower chain's carry out is not the dedicated route to the next cell.
    net = NetlistBuilder()
    a = net.ff("a", net.bit())
    low_sums, low_carries = net.bits(8), net.bits(8)
    net.cell("c0", "CARRY8", {"CI": "0", "CI_TOP": "0", "DI": ["0"] * 8, "S": [a] + ["0"] * 7},
             {"O": low_sums, "CO": low_carries}, CARRY_TYPE="DUAL_CY4")
    sums, carries = net.bits(8), net.bits(8)
    net.cell("c1", "CARRY8", {"CI": low_carries[3], "CI_TOP": "0", "DI": ["0"] * 8,
                              "S": ["0"] * 8}, {"O": sums, "CO": carries})
    net.ff("out", sums[0])
    result = analyse(net.netlist())["nominal"]
    assert result.period_ns == pytest.approx(
        reg_to_reg() + d("net.fanout_1") + d("carry.s_to_co") + d("net.fanout_1")
        + d("carry.ci_to_o") + d("net.fanout_1"))


def dsp_netlist(**registers):
    """A flip-flop into A and B of a DSP48E2 and P[0] into a flip-flop; ``registers``: AREG,
    BREG, MREG, PREG (default 0)."""
    net = NetlistBuilder()
    a = net.ff("a", net.bit())
    p = net.bits(48)
    params = {"AREG": 0, "BREG": 0, "CREG": 0, "MREG": 0, "PREG": 0, "OPMODEREG": 0,
              "ALUMODEREG": 0, "INMODEREG": 0, "CARRYINREG": 0, "CARRYINSELREG": 0,
              "USE_MULT": "MULTIPLY", **registers}
    net.cell("dsp", "DSP48E2", {"A": [a] + ["0"] * 29, "B": [a] + ["0"] * 17,
                                "CLK": net.clk, "OPMODE": ["1", "0", "1"] + ["0"] * 6},
             {"P": p}, **params)
    net.name("product", p)
    net.ff("p0", p[0])
    return net


def test_dsp_without_internal_registers():
    result = analyse(dsp_netlist().netlist())["nominal"]
    inside = sum(d(k) for k in ("dsp.in_ab", "dsp.preadd", "dsp.mult", "dsp.m_data",
                                "dsp.alu", "dsp.out_p"))
    assert result.period_ns == pytest.approx(reg_to_reg() + 2 * d("net.fanout_2_4")
                                             + inside - d("net.fanout_2_4")
                                             + d("net.fanout_1"))
    assert result.levels()["dsp"] == 1
    # The path runs from the register into A/B through the whole DSP to p0.
    steps = result.path()
    assert steps[0]["signal"] == "a" and steps[-1]["signal"] == "p0"


def test_dsp_with_preg_splits_the_path():
    result = analyse(dsp_netlist(PREG=1).netlist())["nominal"]
    into = (d("ff.clk_to_q") + d("net.fanout_2_4") + d("dsp.in_ab") + d("dsp.preadd")
            + d("dsp.mult") + d("dsp.m_data") + d("dsp.alu") + d("dsp.setup_p")
            + d("clock.uncertainty"))
    out = d("dsp.clk_to_p") + d("net.fanout_1") + d("ff.setup_d") + d("clock.uncertainty")
    assert result.period_ns == pytest.approx(max(into, out))
    assert result.path()[-1]["signal"] == "product (PREG)"


def test_dsp_fully_registered():
    # AREG/BREG, MREG and PREG: the longest path is inside the DSP (MREG to PREG through the
    # ALU, or AREG/BREG to MREG through the multiplier).
    result = analyse(dsp_netlist(AREG=1, BREG=1, MREG=1, PREG=1).netlist())["nominal"]
    candidates = [
        d("ff.clk_to_q") + d("net.fanout_2_4") + d("dsp.setup_ab"),
        d("dsp.clk_to_ab") + d("dsp.preadd") + d("dsp.mult") + d("dsp.setup_m"),
        d("dsp.clk_to_m") + d("dsp.alu") + d("dsp.setup_p"),
        d("dsp.clk_to_p") + d("net.fanout_1") + d("ff.setup_d"),
    ]
    assert result.period_ns == pytest.approx(max(candidates) + d("clock.uncertainty"))
    assert result.period_ns < analyse(dsp_netlist().netlist())["nominal"].period_ns


def test_dsp_cascade():
    net = NetlistBuilder()
    a = net.ff("a", net.bit())
    pcout, p = net.bits(48), net.bits(48)
    regs = {"AREG": 0, "BREG": 0, "MREG": 0, "OPMODEREG": 0, "ALUMODEREG": 0,
            "INMODEREG": 0, "CARRYINREG": 0, "CARRYINSELREG": 0}
    net.cell("first", "DSP48E2", {"A": [a] + ["0"] * 29, "B": ["1"] + ["0"] * 17},
             {"PCOUT": pcout}, PREG=0, **regs)
    net.cell("second", "DSP48E2", {"PCIN": pcout}, {"P": p}, PREG=0, **regs)
    net.ff("sum", p[47])
    result = analyse(net.netlist())["nominal"]
    expected = (reg_to_reg() + d("net.fanout_1") + d("dsp.in_ab") + d("dsp.preadd")
                + d("dsp.mult") + d("dsp.m_data") + d("dsp.alu") + d("dsp.out_pcout")
                + d("net.dsp_cascade") + d("dsp.alu") + d("dsp.out_p") + d("net.fanout_1"))
    assert result.period_ns == pytest.approx(expected)
    assert result.levels()["dsp"] == 2


@pytest.mark.parametrize("registered", [0, 1])
def test_block_ram_output(registered):
    net = NetlistBuilder()
    address = net.ff("address", net.bit())
    dout = net.bits(16)
    net.cell("ram", "RAMB18E2", {"ADDRARDADDR": [address] + ["0"] * 13, "CLKARDCLK": net.clk},
             {"DOUTADOUT": dout}, DOA_REG=registered)
    net.name("data", dout)
    net.ff("data_q", net.lut("use", [dout[0]]))
    result = analyse(net.netlist())["nominal"]
    out = (d("bram.clk_to_dout_reg" if registered else "bram.clk_to_dout") + d("net.fanout_1")
           + d("lut.o6") + d("net.fanout_1") + d("ff.setup_d"))
    into = d("ff.clk_to_q") + d("net.fanout_1") + d("bram.setup")
    assert result.period_ns == pytest.approx(max(out, into) + d("clock.uncertainty"))
    assert result.path()[0]["signal"] == "data[0]"


def test_primary_ports_are_taken_as_registered():
    net = NetlistBuilder()
    inputs, outputs = net.bits(2), net.bits(1)
    net.port("i", "input", inputs)
    net.port("o", "output", outputs)
    buffered = net.bits(2)
    for n in range(2):
        net.cell(f"ibuf{n}", "IBUF", {"I": inputs[n]}, {"O": buffered[n]})
    out = net.lut("and", buffered)
    net.cell("obuf", "OBUF", {"I": out}, {"O": outputs[0]})
    summary_ = timing_summary(net.netlist())
    path = summary_["critical_path"]
    assert path["start"] in ("i[0]", "i[1]") and path["end"] == "o"
    assert path["period_ns"]["nominal"] == pytest.approx(
        reg_to_reg() + 2 * d("net.fanout_1") + d("lut.o6"), abs=1e-3)


def test_failing_endpoints_at_the_target_clock():
    # Endpoints at one to twenty LUT levels: those over 4 ns fail.
    net = NetlistBuilder()
    start = net.ff("start", net.bit())
    bit = start
    for n in range(20):
        bit = net.lut(f"l{n}", [bit])
        net.ff(f"r{n}", bit)
    graph = TimingGraph(net.netlist())
    for scenario in SCENARIOS:
        result = graph.evaluate(scenario)
        # The start's net has fanout 1, the chain's fanout 2 (the next LUT and a register)
        # but the last one's.
        periods = [reg_to_reg(scenario) + d("net.fanout_1", scenario)
                   + (n + 1) * (d("lut.o6", scenario) + d("net.fanout_2_4", scenario))
                   for n in range(19)]
        periods.append(reg_to_reg(scenario) + 20 * d("lut.o6", scenario)
                       + 19 * d("net.fanout_2_4", scenario) + 2 * d("net.fanout_1", scenario))
        assert result.endpoints == 20
        assert result.failing == sum(p > 1000 / TARGET_MHZ for p in periods)
    assert graph.evaluate("fast").failing < graph.evaluate("slow").failing


def test_combinational_loop_and_unknown_cells_are_named():
    net = NetlistBuilder()
    a, b = net.bits(2)
    net.cell("left", "LUT1", {"I0": b}, {"O": a})
    net.cell("right", "LUT1", {"I0": a}, {"O": b})
    net.ff("q", a)
    with pytest.raises(ValueError, match=r"loop: 2 cells on it.*left, right"):
        TimingGraph(net.netlist())
    net = NetlistBuilder()
    net.cell("odd", "PLLE4_ADV", {"CLKIN": net.bit()}, {"CLKOUT0": net.bit()})
    with pytest.raises(ValueError, match=r"'odd' of type 'PLLE4_ADV'"):
        TimingGraph(net.netlist())


def test_bench_renders_the_timing_estimates():
    import benchmarks.__main__ as bench

    net = NetlistBuilder()
    bit = net.ff("start", net.bit())
    for n in range(3):
        bit = net.lut(f"lut{n}", [bit])
    net.ff("finish", bit)
    entry = {"name": "chain", "input_bits": None, "lut": 3, "ff": 2, "carry": 0, "dsp": 0,
             "bram36": 0, "lut_per_input_bit": None, **timing_summary(net.netlist())}
    untimed = {**entry, "name": "untimed", **dict.fromkeys(TIMING_KEYS)}
    validation = summary(validate(load_paths()))
    text = bench.render({"configuration": {}, "synthesis": [entry, untimed],
                         "timing_validation": validation})
    section = text[text.index("### Timing estimates"):]
    assert (f"| chain | {entry['fmax_mhz_nominal']} | {entry['fmax_mhz_fast']} | "
            f"{entry['fmax_mhz_slow']} | 3 LUT | `start` -> `finish` | 0 / 0 of 1 |") in section
    assert "untimed" not in section
    assert f"{validation['nominal']['median']:.2f}" in section


# -- One real Yosys run ----------------------------------------------------------------------------

class RegisteredAdder(wiring.Component):
    """a + b with registered inputs and output (32 bits: four CARRY8s after Vivado)."""

    a: In(32)
    b: In(32)
    s: Out(32)

    def elaborate(self, platform):
        m = Module()
        a_q, b_q = Signal(32, name="a_q"), Signal(32, name="b_q")
        m.d.sync += [a_q.eq(self.a), b_q.eq(self.b), self.s.eq(a_q + b_q)]
        return m


def test_yosys_netlist_of_a_registered_adder(tmp_path):
    entry = synthesize(Design("registered_adder", RegisteredAdder, {}, None), tmp_path,
                       timing=True)
    assert set(TIMING_KEYS) <= set(entry)
    assert (tmp_path / "registered_adder.netlist.json.gz").exists()
    path = entry["critical_path"]
    # From an input register through the 32-bit carry chain into the sum register.
    assert re.fullmatch(r"[ab]_q\[\d+\]", path["start"]), path["start"]
    assert re.fullmatch(r"s\[\d+\]", path["end"]), path["end"]
    assert entry["logic_levels"]["carry"] == 4
    assert entry["logic_levels"]["lut"] == 1
    assert path["period_ns"]["fast"] < path["period_ns"]["nominal"] < path["period_ns"]["slow"]
    assert entry["fmax_mhz_nominal"] == pytest.approx(1000 / path["period_ns"]["nominal"],
                                                      abs=0.05)
    # A 32-bit registered adder meets 250 MHz in every scenario.
    assert entry["failing_endpoints"]["slow"] == 0
    json.dumps(entry)
    # The cached result gives the same figures.
    assert synthesize(Design("registered_adder", RegisteredAdder, {}, None), tmp_path,
                      timing=True) == entry
