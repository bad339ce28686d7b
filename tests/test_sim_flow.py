# amaranth: UnusedElaboratable=no
"""The simulation flow itself: build cache, cache keys, waveforms and GTKWave save files."""

import json

import pytest

from rtl.xnor_popcount import XnorPopcountArray
from sim import runner
from sim.regression import xnor_popcount_case

SMALL = xnor_popcount_case(pe=1, simd=4, max_beats=9)


def test_second_run_does_not_rebuild():
    first = SMALL.run(testcase="corners")
    marker = first.build_dir / "built.json"
    built_at = marker.stat().st_mtime_ns
    executable = first.build_dir / SMALL.name
    executable_at = executable.stat().st_mtime_ns
    second = SMALL.run(testcase="corners")
    assert not second.rebuilt
    assert second.build_dir == first.build_dir
    assert marker.stat().st_mtime_ns == built_at
    assert executable.stat().st_mtime_ns == executable_at
    assert second.passed


def _cache_dir(case, **kwargs):
    component = case.build(**case.params)
    return runner.cache_dir(component, case.test_module, case.testbench_params(component),
                            name=case.name, **kwargs)


def test_cache_dir_depends_on_design_parameters_simulator_and_waves():
    base = _cache_dir(SMALL, simulator="verilator", waves=False)
    assert base == _cache_dir(SMALL, simulator="verilator", waves=False)
    others = [
        _cache_dir(xnor_popcount_case(pe=1, simd=5, max_beats=9), simulator="verilator",
                   waves=False),
        _cache_dir(xnor_popcount_case(pe=1, simd=4, max_beats=9, popcount_stages=0),
                   simulator="verilator", waves=False),
        _cache_dir(SMALL, simulator="verilator", waves=True),
    ]
    assert len({base, *others}) == 4


def test_params_reach_the_testbench_file():
    result = SMALL.run(testcase="corners")
    params = json.loads((result.build_dir / "params.json").read_text())
    component = XnorPopcountArray(**SMALL.params)
    assert params == {**SMALL.params, "acc_width": component.acc_width, "groups": 1,
                      "latency": component.latency}


def test_failing_testbench_raises(monkeypatch, tmp_path):
    # A test module whose only test fails: run() must report it, and raise with check=True.
    module = tmp_path / "tb_always_fails.py"
    module.write_text("import cocotb\n\n@cocotb.test()\nasync def fails(dut):\n"
                      "    assert False, 'deliberate'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    component = XnorPopcountArray(**SMALL.params)
    result = runner.run(component, "tb_always_fails", {}, name=SMALL.name, check=False)
    assert not result.passed and result.failures[0].name == "fails"
    # cocotb's output is in the build folder's log, which the failure names.
    log = result.build_dir / runner.SIM_LOG
    assert "deliberate" in log.read_text()
    with pytest.raises(runner.SimulationFailed, match="deliberate") as failure:
        runner.run(component, "tb_always_fails", {}, name=SMALL.name)
    assert str(log) in str(failure.value)


def test_failing_build_quotes_its_log():
    # A Verilator option that does not exist: the build fails, and says why.
    component = XnorPopcountArray(**SMALL.params)
    with pytest.raises(runner.BuildFailed, match="no-such-option") as failure:
        runner.run(component, SMALL.test_module, {}, name=SMALL.name,
                   build_args=["--no-such-option"], simulator="verilator")
    assert "build.log" in str(failure.value)


def test_waves_write_waveform_and_gtkw():
    result = SMALL.run(testcase="throughput_and_latency", waves=True)
    assert result.waveform.exists() and result.waveform.stat().st_size > 0
    text = result.gtkw.read_text()
    assert f'[dumpfile] "{result.waveform}"' in text
    # Every field and array element is a named trace: bit ranges of the flat payload port.
    for alias in ("i.valid", "i.ready", "o.valid", "o.ready", "o[0]", "i.activations",
                  "i.weights[0]", "i.count", "i.last"):
        assert f"{{{alias}}}" in text, alias
    assert f"{SMALL.name}.i__payload[" in text and f"{SMALL.name}.o__payload[" in text
    # One group per stream: opened and closed.
    assert text.count("\n-i\n") == 2 and text.count("\n-o\n") == 2
    # Zoomed to the run: a zoom line, not GTKWave's default of a few picoseconds.
    assert any(line.startswith("*-") for line in text.splitlines())
    header = result.waveform.read_text(errors="replace")[:200_000]
    assert "i__valid" in header and "o__payload" in header
    # Names GTKWave cannot read (Yosys' `...verilog_backend.cc:2355:...`) are not traced.
    assert ".cc:" not in header


def test_unknown_simulator_is_an_error():
    with pytest.raises(ValueError, match="unknown simulator"):
        runner.simulator_name("modelsim")
