# amaranth: UnusedElaboratable=no
"""The datapath units under cocotb: every unit group of :data:`sim.regression.UNIT_CASES`
under Verilator; under Icarus Verilog (when installed) the quantiser and shortcut pool, and the
small head (whose handshake once read X under Icarus)."""

import shutil

import pytest

from sim.regression import UNIT_CASES, activation_case, head_case

# The checks every unit's testbench makes (test names are ``<unit>_<check>``).
CHECKS = ("public_traces", "corners", "throughput_and_latency", "reset_mid_stream")
UNITS = {
    "units_activation": ("quantizer", "shortcut"),
    "units_thermometer": ("encoder", "conv", "input_bn"),
    "units_pg": ("gate", "merge"),
    "units_head": ("head", "small_head"),
}
needs_icarus = pytest.mark.skipif(
    shutil.which("iverilog") is None,
    reason="Icarus Verilog (iverilog) is not on PATH: apt-get install iverilog")


def _units(case):
    return next(units for prefix, units in UNITS.items() if case.name.startswith(prefix))


def test_every_unit_is_covered():
    names = [unit for case in UNIT_CASES for unit in _units(case)]
    assert sorted(names) == sorted(unit for units in UNITS.values() for unit in units)
    assert {name for case in UNIT_CASES for name in case.params} == set(names)


@pytest.mark.parametrize("case", UNIT_CASES, ids=lambda case: case.name)
def test_units_verilator(case):
    result = case.run(simulator="verilator")
    assert result.passed
    ran = {test.name for test in result.tests}
    for unit in _units(case):
        # The small head has no public vectors (its parameters are not the model's).
        wanted = {f"{unit}_{check}" for check in CHECKS} - {"small_head_public_traces"}
        assert wanted <= ran, f"{unit}: {sorted(wanted - ran)} did not run"


@needs_icarus
def test_activation_units_icarus():
    case = activation_case(lanes=2)
    tests = [f"{unit}_{check}" for unit in ("quantizer", "shortcut") for check in CHECKS]
    result = case.run(simulator="icarus", testcase=tests)
    assert result.passed
    assert sorted(test.name for test in result.tests) == sorted(tests)


@needs_icarus
def test_small_head_icarus():
    tests = [f"small_head_{check}" for check in CHECKS if check != "public_traces"]
    result = head_case().run(simulator="icarus", testcase=tests)
    assert result.passed
    assert sorted(test.name for test in result.tests) == sorted(tests)
