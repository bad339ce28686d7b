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
    with pytest.raises(runner.SimulationFailed, match="deliberate"):
        runner.run(component, "tb_always_fails", {}, name=SMALL.name)


def test_waves_write_waveform_and_gtkw():
    result = SMALL.run(testcase="throughput_and_latency", waves=True)
    assert result.waveform.exists() and result.waveform.stat().st_size > 0
    text = result.gtkw.read_text()
    assert f'[dumpfile] "{result.waveform}"' in text
    for trace in ("i__valid", "i__ready", "o__valid", "o__ready", "o__payload",
                  "i__payload.activations", "i__payload.weights", "i__payload.count",
                  "i__payload.last"):
        assert f"{SMALL.name}.{trace}" in text
    # One group per stream: opened and closed.
    assert text.count("\n-i\n") == 2 and text.count("\n-o\n") == 2
    header = result.waveform.read_text(errors="replace")[:200_000]
    assert "i__valid" in header and "o__payload" in header


def test_unknown_simulator_is_an_error():
    with pytest.raises(ValueError, match="unknown simulator"):
        runner.simulator_name("modelsim")
