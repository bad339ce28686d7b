"""The delay model of the timing estimate (:mod:`synth.timing`) for the Zynq UltraScale+
xczu3eg-sbva484-1 (speed grade -1, VCCINT 0.85 V), in one table: :data:`DELAYS`.

Every figure is a delay in ns in three scenarios (:data:`SCENARIOS`): ``fast`` (good placement,
short routes), ``nominal`` (the expected value) and ``slow`` (poor placement and a noisier clock).
All three are slow-process-corner figures, the corner Vivado signs setup off at: the scenarios
model where Vivado places and routes, not the silicon. Where a figure comes from is
:data:`SOURCES`:

``routed``
    measured: the arcs of that class on the routed setup paths of
    ``synth/data/vivado_routed_paths.json`` (Vivado 2021.2 on xczu3eg-sbva484-1, speed file -1
    PRODUCTION 1.29: the public reports of gussmith23/lakeroad-evaluation, see
    ``synth/data/README.md``); fast, nominal and slow are the 25th percentile, the mean and the
    90th percentile of those arcs (the mean where it is above the 90th percentile;
    :func:`synth.validation.routed_statistics` recomputes them, and a test checks that the table
    equals them).
``other_device``
    from a published Vivado report on another UltraScale+ device (named in the note).
``estimate``
    no public figure for this part was found: an assumption, reasoned in the note.

Net delays depend on the net's fanout (:data:`FANOUT_BUCKETS`), except for the dedicated
connections: a carry chain (CO to CI), a LUT into the carry or wide-mux logic of its own slice,
and the DSP cascades. Setup figures are setup times (positive: the data must arrive that long
before the clock edge; Vivado's reports print them with the opposite sign).
"""

from dataclasses import dataclass

__all__ = ["DELAYS", "FANOUT_BUCKETS", "SCENARIOS", "SOURCES", "Figure", "delay",
           "fanout_key", "markdown_table"]

SCENARIOS = ("fast", "nominal", "slow")

SOURCES = {
    "routed": "routed xczu3eg-sbva484-1 paths (synth/data/vivado_routed_paths.json): "
              "25th percentile, mean and 90th percentile of the class's arcs",
    "other_device": "a published Vivado report on another UltraScale+ device",
    "estimate": "an assumption (no public figure for this part found)",
}


@dataclass(frozen=True)
class Figure:
    """One delay of the model: its value in ns per scenario, where it comes from (a key of
    :data:`SOURCES`) and a note (what the arc is, how the figure was reached)."""

    fast: float
    nominal: float
    slow: float
    source: str
    note: str

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"unknown source {self.source!r}; the sources are "
                             f"{', '.join(SOURCES)}")
        if not self.fast <= self.nominal <= self.slow:
            raise ValueError(f"a figure must not shrink from fast to slow: {self.fast}, "
                             f"{self.nominal}, {self.slow}")

    def __getitem__(self, scenario):
        if scenario not in SCENARIOS:
            raise KeyError(f"unknown scenario {scenario!r}; the scenarios are "
                           f"{', '.join(SCENARIOS)}")
        return getattr(self, scenario)


def _f(fast, nominal, slow, source, note):
    return Figure(fast, nominal, slow, source, note)


# Net delay classes by fanout: (largest fanout of the class, key); None: no limit.
FANOUT_BUCKETS = ((1, "net.fanout_1"), (4, "net.fanout_2_4"), (16, "net.fanout_5_16"),
                  (64, "net.fanout_17_64"), (None, "net.fanout_65_up"))

DELAYS = {
    # Flip-flops (FDRE, FDSE, FDCE, FDPE).
    "ff.clk_to_q": _f(0.096, 0.096, 0.097, "routed", "C to Q"),
    "ff.setup_d": _f(-0.027, -0.027, -0.027, "routed", "D before C"),
    "ff.setup_ce": _f(0.043, 0.043, 0.043, "routed", "CE before C"),
    "ff.setup_sr": _f(0.072, 0.072, 0.072, "routed",
                      "R (also S, CLR, PRE) before C; one arc observed"),
    # LUTs. Vivado swaps LUT inputs among the physical pins A1..A6 (A6 about 0.04 ns, A1 about
    # 0.18 ns), so the arc does not depend on Yosys' input order: one figure over all pins.
    "lut.o6": _f(0.063, 0.116, 0.178, "routed", "any input to O6 (LUT1..LUT6, INV)"),
    "lut.o5": _f(0.091, 0.138, 0.200, "routed", "any input to O5 of a LUT6_2"),
    # Carry logic. Yosys maps adders to CARRY4, Vivado to CARRY8: a CARRY4 counts as half a
    # CARRY8 (its CI to CO[3] is half of CI to CO[7] plus half of the net to the next CARRY8).
    "carry.s_to_co": _f(0.201, 0.225, 0.242, "routed",
                        "S[i] to the top carry out (CO[7]); hardly depends on i"),
    "carry.s_to_o": _f(0.249, 0.262, 0.284, "routed", "S[i] to a sum output O[j] (j >= i)"),
    "carry.di_to_co": _f(0.147, 0.156, 0.170, "routed", "DI[i] to CO[7]"),
    "carry.ci_to_co": _f(0.023, 0.025, 0.030, "routed",
                         "CI to CO[7]: 8 bits of the dedicated carry chain"),
    "carry.ci_to_o": _f(0.072, 0.072, 0.072, "routed",
                        "CI to the sum output O[0] of the chain's first bit"),
    "carry.ci_per_bit": _f(0.010, 0.012, 0.016, "routed",
                           "CI to O[j] or an inner CO[j]: each bit j above the first adds this "
                           "(0.07 ns at j = 0 to 0.15 ns at j = 7)"),
    "net.carry": _f(0.028, 0.031, 0.031, "routed",
                    "CO[7] to the next CARRY8's CI (dedicated)"),
    # Wide multiplexers (MUXF7/MUXF8/MUXF9).
    "muxf.i_to_o": _f(0.082, 0.082, 0.082, "routed", "I0/I1 to O; one arc observed"),
    "muxf.s_to_o": _f(0.120, 0.160, 0.200, "estimate",
                      "S to O: the select comes from a slice input; assumed twice the data "
                      "arc (no public figure)"),
    "net.lut_to_muxf": _f(0.009, 0.009, 0.009, "routed",
                          "a LUT into the F7 mux of its slice (dedicated); one net observed"),
    "net.lut_to_carry": _f(0.011, 0.084, 0.268, "routed",
                           "a fanout-1 LUT into S/DI of the carry of its slice (0.01 ns in the "
                           "same slice, about 0.3 ns when Vivado places it elsewhere)"),
    # General nets by fanout (to the sink on the path).
    "net.fanout_1": _f(0.042, 0.140, 0.282, "routed",
                       "fanout 1 (0.02-0.06 ns inside a slice, 0.2-0.4 ns between slices)"),
    "net.fanout_2_4": _f(0.193, 0.249, 0.351, "routed", "fanout 2-4"),
    "net.fanout_5_16": _f(0.181, 0.251, 0.379, "routed", "fanout 5-16"),
    "net.fanout_17_64": _f(0.271, 0.421, 0.714, "routed", "fanout 17-64"),
    "net.fanout_65_up": _f(0.302, 0.525, 0.801, "routed",
                           "fanout 65 and up (observed up to 129; Vivado replicates larger "
                           "drivers, which this model does not)"),
    # DSP48E2, as the stages Vivado times it in (DSP_A_B_DATA, DSP_PREADD_DATA, DSP_MULTIPLIER,
    # DSP_M_DATA, DSP_ALU, DSP_OUTPUT). With no internal register: A/B to P is
    # 0.195 + 0.092 + 0.737 + 0.059 + 0.699 + 0.141 = 1.92 ns.
    "dsp.in_ab": _f(0.195, 0.195, 0.195, "routed",
                    "A/B input to the multiplier's input without AREG/BREG (also taken for C, "
                    "D and unregistered control inputs)"),
    "dsp.clk_to_ab": _f(0.263, 0.263, 0.263, "routed", "CLK to the output of AREG/BREG"),
    "dsp.preadd": _f(0.092, 0.092, 0.092, "routed", "through the (bypassed) pre-adder"),
    "dsp.mult": _f(0.737, 0.737, 0.737, "routed", "the 27x18 multiplier"),
    "dsp.m_data": _f(0.059, 0.059, 0.059, "routed", "through MREG's bypass (MREG = 0)"),
    "dsp.alu": _f(0.698, 0.698, 0.699, "routed", "the ALU, from the multiplier, C or PCIN"),
    "dsp.out_p": _f(0.141, 0.141, 0.141, "routed", "ALU to P without PREG"),
    "dsp.out_pcout": _f(0.159, 0.159, 0.159, "routed", "ALU to PCOUT without PREG"),
    "dsp.setup_p": _f(-0.010, -0.010, -0.010, "routed", "the ALU's output before CLK (PREG)"),
    "net.dsp_cascade": _f(0.016, 0.034, 0.065, "routed", "PCOUT to PCIN (also ACOUT, BCOUT)"),
    "dsp.clk_to_p": _f(0.300, 0.330, 0.350, "other_device",
                       "CLK to P with PREG: 0.347 ns on an xczu5ev -1LV (0.72 V, slower than "
                       "0.85 V), Vivado 2024.2, a synthesised design's report"),
    "dsp.clk_to_m": _f(0.263, 0.300, 0.350, "estimate",
                       "CLK to the ALU's input with MREG: assumed about CLK to AREG/BREG's "
                       "output (0.263 ns)"),
    "dsp.setup_ab": _f(0.150, 0.200, 0.300, "estimate",
                       "A/B/C/D before CLK into AREG/BREG/CREG/DREG (no public figure)"),
    "dsp.setup_m": _f(0.000, 0.050, 0.100, "estimate",
                      "the multiplier's output before CLK into MREG (no public figure)"),
    "dsp.setup_ctrl": _f(0.200, 0.300, 0.400, "estimate",
                         "clock enables, resets and registered OPMODE/ALUMODE/INMODE/CARRYIN "
                         "before CLK (no public figure)"),
    # Block RAM (RAMB18E2/RAMB36E2): no public figure for this part was found.
    "bram.clk_to_dout": _f(0.830, 0.950, 1.120, "estimate",
                           "CLK to DOUT without the output register (DO_REG = 0); the Versal "
                           "-1 data sheet (DS958) gives 0.967 ns, a routed Virtex "
                           "UltraScale+ report (faster grade) 0.830 ns"),
    "bram.clk_to_dout_reg": _f(0.260, 0.300, 0.360, "estimate",
                               "CLK to DOUT with the output register (DO_REG = 1); DS958 "
                               "(Versal -1): 0.280 ns"),
    "bram.setup": _f(0.250, 0.350, 0.500, "estimate",
                     "address, data, write and port enables before CLK (a routed 7-series "
                     "report: 0.48 ns for WEA)"),
    # LUT RAM (RAM32M, RAM64M, RAM32X1D, ...) and shift registers (SRL16E, SRLC32E).
    "lutram.read": _f(0.100, 0.150, 0.200, "estimate",
                      "read address to data out: a LUT read plus the RAM's output mux"),
    "lutram.clk_to_out": _f(0.750, 0.900, 1.100, "estimate",
                            "CLK to data out after a write (or a shift)"),
    "lutram.setup": _f(0.150, 0.250, 0.400, "estimate",
                       "write address, data and enable before CLK"),
    # The clock.
    "clock.uncertainty": _f(0.035, 0.060, 0.100, "estimate",
                            "0.035 ns is Vivado's uncertainty for an ideal clock (system "
                            "jitter alone, in every routed report used here); the PS's pl_clk0 "
                            "adds input jitter, and a large design clock skew: 0.06 and 0.10 ns "
                            "assumed"),
}


def delay(key, scenario):
    """The delay ``key`` of :data:`DELAYS` in ``scenario`` (ns). ``key`` may also be a pair
    (``"carry.ci_to_o"``, ``j``): the carry chain's CI to its bit ``j``'s output, which grows
    by ``carry.ci_per_bit`` per bit."""
    if isinstance(key, tuple):
        name, bit = key
        if name != "carry.ci_to_o" or bit < 0:
            raise KeyError(f"no delay {key!r} in the model")
        return delay(name, scenario) + bit * delay("carry.ci_per_bit", scenario)
    try:
        figure = DELAYS[key]
    except KeyError:
        raise KeyError(f"no delay {key!r} in the model") from None
    return figure[scenario]


def markdown_table():
    """:data:`DELAYS` as a Markdown table (docs/architecture.md §8.5 quotes it; a test checks
    that it is this table): ``python -m synth.delays``."""
    lines = ["| delay | fast | nominal | slow | source | what |", "|---|---|---|---|---|---|"]
    for key, figure in DELAYS.items():
        lines.append(f"| `{key}` | {figure.fast:.3f} | {figure.nominal:.3f} | "
                     f"{figure.slow:.3f} | {figure.source} | {figure.note} |")
    return "\n".join(lines)


def fanout_key(fanout):
    """The :data:`DELAYS` key of a general net of ``fanout`` loads."""
    if fanout < 1:
        raise ValueError(f"a net on a path has at least one load, not {fanout}")
    for limit, key in FANOUT_BUCKETS:
        if limit is None or fanout <= limit:
            return key
    raise AssertionError("unreachable")


if __name__ == "__main__":
    print(markdown_table())
