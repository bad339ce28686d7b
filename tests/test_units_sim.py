# amaranth: UnusedElaboratable=no
"""The datapath units under cocotb: every unit group of :data:`sim.regression.UNIT_CASES`
under Verilator; under Icarus Verilog (when installed) the quantiser and shortcut pool, and the
small head (whose handshake once read X under Icarus). The test names come from the
testbenches themselves (:meth:`sim.regression.SimCase.test_names`)."""

import shutil

import pytest

from sim.regression import UNIT_CASES, UNIT_CLASSES, activation_case, head_case
from sim.streams import contract_test_names

# Besides its stream contract, every unit's testbench checks corner values and, where the
# unit's parameters are the model's, the public vectors (the small head's are not).
NO_PUBLIC_VECTORS = {"small_head"}
needs_icarus = pytest.mark.skipif(
    shutil.which("iverilog") is None,
    reason="Icarus Verilog (iverilog) is not on PATH: apt-get install iverilog")


def test_every_unit_is_covered():
    assert {unit for case in UNIT_CASES for unit in case.params} == set(UNIT_CLASSES)
    for case in UNIT_CASES:
        names = case.test_names()
        assert len(names) == len(set(names)), f"{case.name}: a test name repeats"
        for unit in case.params:
            wanted = {*contract_test_names(unit), f"{unit}_corners"}
            if unit not in NO_PUBLIC_VECTORS:
                wanted.add(f"{unit}_public_traces")
            assert wanted <= set(names), f"{unit}: {sorted(wanted - set(names))} missing"
        assert all(any(name.startswith(f"{unit}_") for unit in case.params) for name in names)


@pytest.mark.parametrize("case", UNIT_CASES, ids=lambda case: case.name)
def test_units_verilator(case):
    result = case.run(simulator="verilator")
    assert result.passed
    assert sorted(test.name for test in result.tests) == sorted(case.test_names())


@needs_icarus
def test_activation_units_icarus():
    case = activation_case(lanes=2)
    # All but the 65,536 codes of quantizer_every_code, too slow under Icarus.
    tests = [name for name in case.test_names() if name != "quantizer_every_code"]
    result = case.run(simulator="icarus", testcase=tests)
    assert result.passed
    assert sorted(test.name for test in result.tests) == sorted(tests)


@needs_icarus
def test_small_head_icarus():
    case = head_case()
    tests = [name for name in case.test_names() if name.startswith("small_head_")]
    result = case.run(simulator="icarus", testcase=tests)
    assert result.passed
    assert sorted(test.name for test in result.tests) == sorted(tests)
