"""``python -m benchmarks`` without its long parts: the keys it reserves and the sweep section
(synthesis and simulation skipped; the golden model's timing replaced by a stand-in)."""

import json

import pytest

from benchmarks import __main__ as bench


@pytest.fixture
def quick_bench(monkeypatch):
    # The golden model's speed takes half a minute; its figures are not what is tested here.
    monkeypatch.setattr(bench, "golden_figures", lambda: {
        "golden_batch": 1, "golden_seconds": 1.0, "golden_images_per_s": 1.0})
    return bench.main


def test_quick_bench_reserves_the_decoder_key_and_runs_the_sweep(tmp_path, quick_bench):
    pytest.importorskip("matplotlib")
    assert quick_bench(["--skip-synth", "--skip-sim", "--out", str(tmp_path)]) == 0
    figures = json.loads((tmp_path / "benchmarks.json").read_text())
    assert figures["decoder_symbols_per_cycle"] is None
    assert "verilator_over_icarus" not in figures           # simulation was skipped
    sweep = figures["sweep"]
    assert sweep["accelerator_lut"] is None                 # no synthesis: cycles only
    assert len(sweep["points"]) == 70
    assert (tmp_path / "docs" / "cycle_breakdown.png").exists()
    assert not (tmp_path / "docs" / "pareto.png").exists()
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert "## Design-space sweep" in text and "docs/cycle_breakdown.png" in text
    assert "reserved" in text


def test_skip_sweep(tmp_path, quick_bench):
    assert quick_bench(["--skip-synth", "--skip-sim", "--skip-sweep", "--out",
                        str(tmp_path)]) == 0
    figures = json.loads((tmp_path / "benchmarks.json").read_text())
    assert "sweep" not in figures and not (tmp_path / "docs").exists()
