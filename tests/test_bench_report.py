"""``python -m benchmarks`` without its long parts: the keys it reserves and the sweep section
(synthesis and simulation skipped; the golden model's timing replaced by a stand-in)."""

import json

import pytest

from benchmarks import __main__ as bench
from benchmarks import decoder


@pytest.fixture
def quick_bench(monkeypatch):
    # The golden model's speed takes half a minute; its figures are not what is tested here.
    monkeypatch.setattr(bench, "golden_figures", lambda: {
        "golden_batch": 1, "golden_seconds": 1.0, "golden_images_per_s": 1.0})
    return bench.main


def test_quick_bench_without_simulation_runs_the_sweep(tmp_path, quick_bench):
    pytest.importorskip("matplotlib")
    assert quick_bench(["--skip-synth", "--skip-sim", "--out", str(tmp_path)]) == 0
    figures = json.loads((tmp_path / "benchmarks.json").read_text())
    assert figures["decoder_symbols_per_cycle"] is None
    assert "verilator_over_icarus" not in figures           # simulation was skipped
    sweep = figures["sweep"]
    assert sweep["accelerator_lut"] is None                 # no synthesis: cycles only
    assert len(sweep["points"]) == 66   # pe, simd in {4, 8, 16}; N in {1, 2, 4, 8} | simd; 1, 2 px
    assert (tmp_path / "docs" / "cycle_breakdown.png").exists()
    assert not (tmp_path / "docs" / "pareto.png").exists()
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert "## Design-space sweep" in text and "docs/cycle_breakdown.png" in text
    assert "## Huffman decoder throughput\n\nNot measured in this run" in text


def test_skip_sweep(tmp_path, quick_bench):
    assert quick_bench(["--skip-synth", "--skip-sim", "--skip-sweep", "--out",
                        str(tmp_path)]) == 0
    figures = json.loads((tmp_path / "benchmarks.json").read_text())
    assert "sweep" not in figures and not (tmp_path / "docs").exists()


def test_decoder_section():
    rows = [{"model": model, "stream": stream, "decoder_symbols_per_cycle": n, "blocks": 2,
             "symbols": 8 * n, "cycles": 10, "model_cycles": 10, "symbols_per_cycle": 0.8 * n}
            for model, stream in (("fracbnn_cifar10", "fracbnn"), ("bnn_pynq_cnv_w1a1", "cnv"))
            for n in (1, 4)]
    assert decoder.symbols_per_cycle(rows, 4) == 3.2
    assert decoder.symbols_per_cycle(rows, 1, model="bnn_pynq_cnv_w1a1") == 0.8
    assert decoder.symbols_per_cycle(rows, 8) is None
    synthesis = [{"name": "huffman_decoder_n4", "input_bits": None, "lut": 1299, "ff": 367,
                  "carry": 10, "dsp": 0, "bram36": 1.0, "lut_per_input_bit": None}]
    text = bench.render({"configuration": {"decoder_symbols_per_cycle": 4}, "decoder": rows,
                         "synthesis": synthesis})
    section = text[text.index("## Huffman decoder throughput"):]
    assert "| fracbnn_cifar10 | 4 | 2 | 32 | 10 | 3.2000 | 1299 | 1.0 |" in section
    assert "| bnn_pynq_cnv_w1a1 | 1 | 2 | 8 | 10 | 0.8000 | - | - |" in section
    assert "N = 4" in section


def test_accelerator_section_shows_the_simulation_speed():
    acc = {"cycles_per_image": 20412, "cycles_estimate": 20412, "estimate_error": 0.0,
           "latency_cycles_per_image": 20411, "latency_estimate": 20411,
           "images_per_s_at_250mhz": 12247.7, "bmac_lanes": 4608, "layers": [],
           "phases": {"load": 1025, "stem": 1046, "head": 84},
           "accelerator_build_s": 61.4, "accelerator_sim_cycles_per_s": 81234,
           "load_average": {"before": 0.12, "after": 1.9}, "cpu_count": 2}
    text = bench.render({"configuration": {}, "accelerator": acc})
    assert "idle takes 20,411 cycles from its first pixel transfer to its logits" in text
    section = text[text.index("### Simulation of the whole accelerator"):]
    assert "in **61 s**" in section and "**81,234 cycles/s**" in section
    assert "2 cores with a load average of 0.12 before and 1.9 after" in section
    del acc["accelerator_build_s"]                 # a run without the fresh build
    assert "### Simulation of the whole accelerator" not in bench.render(
        {"configuration": {}, "accelerator": acc})


@pytest.mark.parametrize("fmax, clock", [(295.5, 250.0), (180.4, 180.4)])
def test_timing_section_claims_the_lower_of_target_and_estimate(fmax, clock):
    assert bench.estimated_clock_mhz(fmax) == clock
    entry = {"name": "accelerator", "input_bits": 4608, "lut": 37818, "ff": 45454,
             "carry": 1947, "dsp": 101, "bram36": 56.5, "lut_per_input_bit": 8.2,
             "fmax_mhz_nominal": fmax, "fmax_mhz_fast": 338.1,
             "fmax_mhz_slow": 203.9, "logic_levels": {"lut": 3, "carry": 0, "muxf": 0, "dsp": 0},
             "critical_path": {"start": "a", "end": "b"},
             "failing_endpoints": {"target_mhz": 250.0, "endpoints": 10, "nominal": 0,
                                   "slow": 0}}
    text = bench.render({"configuration": {}, "synthesis": [entry], "fmax_mhz_nominal": fmax,
                         "fmax_mhz_slow": 203.9, "fmax_mhz_fast": 338.1,
                         "clock_mhz_estimated": clock,
                         "images_per_s_at_estimated_clock": clock * 1e6 / 19531})
    section = text[text.index("### Timing estimates"):]
    assert f"is **{clock:g} MHz: {clock * 1e6 / 19531:,.0f} images/s**" in section
