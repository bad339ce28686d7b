# amaranth: UnusedElaboratable=no
"""The simulator-speed benchmark's parsing and its free-running design (no simulator run)."""

from pathlib import Path

import pytest
from amaranth.sim import Simulator

from benchmarks import simspeed

REPO_ROOT = Path(__file__).resolve().parent.parent

RESULTS = """<?xml version='1.0' encoding='utf-8'?>
<testsuites name="cocotb tests"><testsuite name="t" tests="2">
<testcase classname="t" name="a" time="1.5"><properties>
<property name="sim_time_unit" value="{unit}" /><property name="sim_time_duration" value="{a}" />
</properties></testcase>
<testcase classname="t" name="b" time="0.5"><properties>
<property name="sim_time_unit" value="{unit}" /><property name="sim_time_duration" value="{b}" />
</properties></testcase>
</testsuite></testsuites>
"""


def test_parse_results_sums_the_tests(tmp_path):
    path = tmp_path / "results.xml"
    path.write_text(RESULTS.format(unit="ns", a=4530.0, b=570.0))
    assert simspeed.parse_results(path) == (5100.0, 2.0, 2)
    path.write_text(RESULTS.format(unit="ps", a=4_530_000, b=570_000))
    assert simspeed.parse_results(path) == (pytest.approx(5100.0), 2.0, 2)
    cycles, per_second = simspeed.speed(5100.0, 2.0)
    assert cycles == 510 and per_second == 255


def test_parse_results_refuses_what_it_cannot_measure(tmp_path):
    path = tmp_path / "results.xml"
    path.write_text(RESULTS.format(unit="step", a=1, b=1))
    with pytest.raises(ValueError, match="step"):
        simspeed.parse_results(path)
    path.write_text(RESULTS.replace('<property name="sim_time_duration" value="{b}" />', "")
                    .format(unit="ns", a=1))
    with pytest.raises(ValueError, match="'b' has no sim_time_duration"):
        simspeed.parse_results(path)
    path.write_text("<testsuites><testsuite/></testsuites>")
    with pytest.raises(ValueError, match="no test case"):
        simspeed.parse_results(path)
    with pytest.raises(ValueError, match="nothing was measured"):
        simspeed.speed(100.0, 0.0)


def test_clock_period_is_the_testbenches():
    # Simulated cycles are simulated time over this period: it must be the testbenches' clock,
    # the default of sim.streams, which the XNOR-popcount testbench does not override.
    from sim import streams

    assert simspeed.TESTBENCH_CLOCK_NS == streams.CLOCK_PERIOD_NS
    unit = (REPO_ROOT / "sim" / "tb_xnor_popcount.py").read_text()
    assert "period_ns" not in unit and "Clock(" not in unit


def test_free_running_array_keeps_changing():
    dut = simspeed.FreeRunningArray(pe=2, simd=18, groups=9, max_beats=4)
    seen = []

    async def bench(ctx):
        for _ in range(60):
            await ctx.tick()
            seen.append((ctx.get(dut.array.i.payload.as_value()), ctx.get(dut.checksum)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    beats = [beat for beat, _ in seen]
    assert len(set(beats)) == len(beats)            # a new beat every cycle, never stuck
    assert all(beat != 0 for beat in beats)
    checksums = [checksum for _, checksum in seen]
    assert len(set(checksums)) > 10                 # results keep arriving and are folded in


def test_missing_icarus_gives_a_note_and_no_ratio(monkeypatch):
    monkeypatch.setattr(simspeed.shutil, "which", lambda name: None)
    figures = simspeed.measure(progress=lambda message: None)
    assert figures["verilator_over_icarus"] is None
    assert figures["verilator_over_icarus_free_running"] is None
    assert "iverilog" in figures["note"]
    assert "verilator" not in figures["unit_testbench"]     # nothing was run


def test_ratio():
    figures = {"verilator": {"cycles_per_s": 300.0}, "icarus": {"cycles_per_s": 120.0}}
    assert simspeed.ratio(figures) == 2.5
