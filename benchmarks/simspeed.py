# amaranth: UnusedElaboratable=no
"""Simulation speed of Verilator and Icarus Verilog on the same design, in one run.

The design is a mid-sized unit, the XNOR-popcount array at :data:`SPEED_CASE_PARAMS` (8 PEs x
72 input bits in 9 groups, a quarter of the conv engine's array), measured two ways, each
under both simulators:

* **unit testbench** (``verilator_over_icarus``): its cocotb regression testbench
  (``sim/tb_xnor_popcount.py``) with the same random seed under both, so both simulate the
  same cycles. This is the speed the regression sees, and it includes the testbench's Python:
  the stream drivers and monitors run every cycle and the scoreboard's golden sums are
  computed during the tests, which costs the same under both simulators and pulls the ratio
  towards 1.
* **free running** (``verilator_over_icarus_free_running``): the same array fed by an on-chip
  pseudo-random source with its sums folded into a checksum (:class:`FreeRunningArray`), and a
  testbench that only starts the clock and waits (``benchmarks/tb_simspeed.py``): the
  simulators' own speed. Both must end with the same checksum.

Speed is simulated clock cycles per second of wall time over the test phase only (cocotb's
per-test wall time and simulated time in ``results.xml``, summed over the tests); building the
simulation is not counted.

Usage: ``python -m benchmarks.simspeed``; ``python -m benchmarks`` includes it.
"""

import json
import shutil
import sys
import time
import xml.etree.ElementTree as ElementTree

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from sim.streams import CLOCK_PERIOD_NS

__all__ = ["FreeRunningArray", "SPEED_CASE_PARAMS", "TESTBENCH_CLOCK_NS", "measure",
           "parse_results", "speed"]

# sim.regression.xnor_popcount_case arguments of the measured design.
SPEED_CASE_PARAMS = {"pe": 8, "simd": 72, "groups": 9, "max_beats": 8}
# The clock period of sim/tb_xnor_popcount.py (the testbenches' default) and of
# benchmarks/tb_simspeed.py (given it in its parameters).
TESTBENCH_CLOCK_NS = CLOCK_PERIOD_NS
# Cycles the free-running design is simulated for: about 45 s under Icarus (Verilator: a
# fraction of a second).
FREE_RUNNING_CYCLES = 10_000
SEED = 2026
CHECKSUM_ENV = "FRACBNN_SIMSPEED_CHECKSUM"
_NS_PER = {"fs": 1e-6, "ps": 1e-3, "ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
CHECKSUM_BITS = 32


class FreeRunningArray(wiring.Component):
    """An :class:`rtl.xnor_popcount.XnorPopcountArray` (``array_params``) that needs no
    testbench: every cycle a new pseudo-random beat goes in (an xorshift register as wide as
    the beat), every result is taken and XOR-folded into ``checksum``, so no logic is unused
    (Verilator would drop it) and two simulators can be compared."""

    def __init__(self, **array_params):
        from rtl.xnor_popcount import XnorPopcountArray
        self.array = XnorPopcountArray(**array_params)
        super().__init__({"checksum": Out(CHECKSUM_BITS)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.array = array = self.array
        width = len(array.i.payload.as_value())
        # Two xorshift steps, each invertible, so the state never falls to zero.
        noise = Signal(width, init=int("1101" * (width // 4 + 1), 2) % (1 << width))
        mixed = (noise ^ (noise << 7))[:width]
        m.d.sync += noise.eq(mixed ^ (mixed >> 9))
        m.d.comb += [array.i.payload.eq(noise), array.i.valid.eq(1), array.o.ready.eq(1)]
        sums = array.o.payload.as_value()
        folded = 0
        for low in range(0, len(sums), CHECKSUM_BITS):
            folded ^= sums[low:low + CHECKSUM_BITS]
        with m.If(array.o.valid):
            m.d.sync += self.checksum.eq(Cat(self.checksum[1:], self.checksum[0]) ^ folded)
        return m


def parse_results(path):
    """(simulated ns, wall seconds, tests) summed over the test cases of a cocotb
    ``results.xml``."""
    simulated_ns, wall, tests = 0.0, 0.0, 0
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        properties = {prop.get("name"): prop.get("value") for prop in case.iter("property")}
        unit = properties.get("sim_time_unit", "ns")
        if unit not in _NS_PER:
            raise ValueError(f"{path}: simulated time in {unit!r}, not a unit of time")
        if "sim_time_duration" not in properties:
            raise ValueError(f"{path}: test {case.get('name')!r} has no sim_time_duration")
        simulated_ns += float(properties["sim_time_duration"]) * _NS_PER[unit]
        wall += float(case.get("time"))
        tests += 1
    if not tests:
        raise ValueError(f"{path}: no test case")
    return simulated_ns, wall, tests


def speed(simulated_ns, wall_seconds, clock_ns=TESTBENCH_CLOCK_NS):
    """Simulated cycles and simulated cycles per second of wall time."""
    if wall_seconds <= 0:
        raise ValueError(f"wall time {wall_seconds} s: nothing was measured")
    cycles = round(simulated_ns / clock_ns)
    return cycles, cycles / wall_seconds


def ratio(figures):
    """Verilator's cycles per second over Icarus'."""
    return round(figures["verilator"]["cycles_per_s"] / figures["icarus"]["cycles_per_s"], 2)


def _progress(message):
    print(message, file=sys.stderr, flush=True)


def _timed(run, simulator, label, progress):
    started = time.monotonic()
    progress(f"simulation speed: {label} under {simulator} ...")
    result = run(simulator)
    simulated_ns, wall, tests = parse_results(result.build_dir / "results.xml")
    cycles, per_second = speed(simulated_ns, wall)
    progress(f"  {cycles:,} cycles in {wall:.2f} s of tests: {per_second:,.0f} cycles/s "
             f"({time.monotonic() - started:.0f} s with the build)")
    return result, {"simulated_cycles": cycles, "test_seconds": round(wall, 3),
                    "cycles_per_s": round(per_second, 1), "tests": tests}


def measure(case_params=SPEED_CASE_PARAMS, seed=SEED, cycles=FREE_RUNNING_CYCLES,
            progress=_progress):
    """Both measurements under Verilator and Icarus: a dict with each simulator's simulated
    cycles, test wall time and cycles per second, ``verilator_over_icarus`` (the unit
    testbench) and ``verilator_over_icarus_free_running``; both None with a ``note`` when
    Icarus is not installed."""
    from sim.regression import xnor_popcount_case
    from sim.runner import run

    case = xnor_popcount_case(**case_params)
    figures = {"design": case.name, "unit_testbench": {"testbench": case.test_module},
               "free_running": {"testbench": "benchmarks.tb_simspeed", "cycles": cycles}}
    if shutil.which("iverilog") is None:
        note = ("Icarus Verilog (iverilog) is not installed, so there is no ratio; install it "
                "(e.g. apt-get install iverilog) to measure one")
        progress(f"simulation speed: skipped ({note})")
        return {**figures, "verilator_over_icarus": None,
                "verilator_over_icarus_free_running": None, "note": note}
    bench = figures["unit_testbench"]
    for simulator in ("verilator", "icarus"):
        _, bench[simulator] = _timed(
            lambda simulator: case.run(simulator=simulator, seed=seed, waves=False),
            simulator, f"{case.name} unit testbench", progress)
    if bench["verilator"]["simulated_cycles"] != bench["icarus"]["simulated_cycles"]:
        # Same seed, same testbench: the simulated cycles should match.
        bench["note"] = (f"the simulators simulated different cycle counts "
                         f"({bench['verilator']['simulated_cycles']} and "
                         f"{bench['icarus']['simulated_cycles']}); speeds are per cycle")

    free = figures["free_running"]
    array_params = dict(case.params)
    checksums = {}
    for simulator in ("verilator", "icarus"):
        def run_free(simulator):
            # The testbench runs in the build folder: the checksum file lands there.
            return run(FreeRunningArray(**array_params), "benchmarks.tb_simspeed",
                       {"cycles": cycles, "clock_ns": TESTBENCH_CLOCK_NS, **array_params},
                       name=f"free_running_{case.name}", simulator=simulator, waves=False,
                       extra_env={CHECKSUM_ENV: "checksum.json"})
        result, free[simulator] = _timed(run_free, simulator, f"{case.name} free running",
                                         progress)
        checksums[simulator] = json.loads((result.build_dir / "checksum.json").read_text())
    if checksums["verilator"] != checksums["icarus"]:
        raise RuntimeError(f"Verilator and Icarus disagree on the free-running design: "
                           f"{checksums}")
    free["checksum"] = checksums["verilator"]["checksum"]
    return {**figures, "verilator_over_icarus": ratio(bench),
            "verilator_over_icarus_free_running": ratio(free)}


def main():
    print(json.dumps(measure(), indent=2))


if __name__ == "__main__":
    main()
