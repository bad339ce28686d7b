# amaranth: UnusedElaboratable=no
"""The whole accelerator in Verilator against the golden model (sim/tb_accelerator.py).

The first test builds the accelerator (a minute or two on two cores; cached in build/sim/),
the others reuse the build; the other configurations build once each.
"""

from types import SimpleNamespace

import numpy as np
import pytest
from amaranth.back import rtlil

from benchmarks.sweep_config import DEFAULT_GRID
from fracbnn_golden import FracBNN
from rtl.accelerator import FracBNNAccelerator
from rtl.interfaces import verilog_ports
from rtl.schedule import AcceleratorConfig, ConfigError
from sim.accelerator import AcceleratorRun, run_accelerator
from sim.accelerator import main as accelerator_main


def test_public_vectors_bit_exact_and_cycles_as_estimated(public_vectors):
    run = run_accelerator(public_vectors["pixels"])
    np.testing.assert_array_equal(run.logits, public_vectors["logits"])
    estimate = FracBNNAccelerator(FracBNN.default()).estimate_cycles()
    # The analytical model is exact, weight waits included (docs/architecture.md §6): the
    # first image finds the accelerator idle and takes the latency; every later one was
    # loaded while the one before was in its layers and follows it by the interval.
    assert run.cycles[0] == run.done_cycle[0] == estimate.total, (run.cycles, estimate.total)
    assert (np.diff(run.done_cycle) == estimate.interval).all(), (run.done_cycle,
                                                                  estimate.interval)
    assert estimate.interval < estimate.total
    # The second image's pixels follow the first's at once (the harness never runs dry), so
    # its latency is its wait for the first image plus its own time.
    load = estimate.phases["load"]
    assert run.cycles[1] == run.done_cycle[1] - load, (run.cycles, run.done_cycle)


def test_every_layer_output_matches_the_golden_trace(public_vectors):
    run_accelerator(public_vectors["pixels"][:2], testcase="every_layer_matches_the_trace")


def test_random_images():
    rng = np.random.default_rng(2026)
    pixels = rng.integers(0, 256, size=(2, 3, 32, 32), dtype=np.uint8)
    pixels[1] = np.where(rng.random((3, 32, 32)) < 0.5, 0, 255)      # extremes: saturation
    run = run_accelerator(pixels)
    np.testing.assert_array_equal(run.logits, FracBNN.default().logits(pixels))


def test_back_pressure_on_pixels_and_logits(public_vectors):
    run_accelerator(public_vectors["pixels"][2:4], testcase="back_pressure")


def test_reset_in_the_middle_of_an_image(public_vectors):
    run_accelerator(public_vectors["pixels"][4:5], testcase="reset_in_the_middle_of_an_image")


@pytest.mark.parametrize("kwargs, words", [
    ({"pe": 0}, "pe must be a positive integer"),
    ({"simd_channels": 3}, "must divide the layer widths"),
    ({"pe": True}, "pe must be a positive integer"),
])
def test_bad_configurations(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        AcceleratorConfig(**kwargs)


# Configurations other than the default, one of each way pe and simd_channels can differ from
# it: the arrays read a part of each activation word (pe > simd_channels, and the weight cache
# makes the engine wait); the quantiser writes a part of it and the stem writes its 16 channels
# as four groups (pe < simd_channels), here with one pixel per beat; both narrow, with sixteen
# times the default's beats.
OTHER_CONFIGS = [AcceleratorConfig(pe=16, simd_channels=8, decoder_symbols_per_cycle=2),
                 AcceleratorConfig(pe=4, simd_channels=16, pixels_per_beat=1),
                 AcceleratorConfig(pe=4, simd_channels=4)]


@pytest.mark.parametrize("config", OTHER_CONFIGS, ids=lambda config: (
    f"pe{config.pe}_simd{config.simd_channels}_n{config.decoder_symbols_per_cycle}"
    f"_p{config.pixels_per_beat}"))
def test_other_configurations_bit_exact_and_cycles_as_estimated(public_vectors, config):
    rng = np.random.default_rng(config.lanes)
    pixels = np.stack([public_vectors["pixels"][0],
                       rng.integers(0, 256, size=(3, 32, 32), dtype=np.uint8)])
    run = run_accelerator(pixels, config=config)
    net = FracBNN.default()
    np.testing.assert_array_equal(run.logits, net.logits(pixels))
    estimate = FracBNNAccelerator(net, config).estimate_cycles()
    assert run.cycles[0] == run.done_cycle[0] == estimate.total, (run.cycles, estimate.total)
    assert run.done_cycle[1] - run.done_cycle[0] == estimate.interval, (run.done_cycle,
                                                                        estimate.interval)


SIMULATED_SIZES = {(config.pe, config.simd_channels)
                   for config in (AcceleratorConfig(), *OTHER_CONFIGS)}


@pytest.mark.parametrize("pe, simd_channels", [
    (pe, simd) for pe in DEFAULT_GRID.pe for simd in DEFAULT_GRID.simd_channels
    if (pe, simd) not in SIMULATED_SIZES])
def test_every_other_array_size_of_the_sweep_builds(pe, simd_channels):
    """The (pe, simd_channels) the sweep reports and the tests above do not simulate convert to
    a netlist (the decoder's symbols per cycle change the weight cache's decoder alone)."""
    accelerator = FracBNNAccelerator(FracBNN.default(), AcceleratorConfig(
        pe=pe, simd_channels=simd_channels))
    rtlil.convert(accelerator, ports=verilog_ports(accelerator))


def test_cli_rejects_a_configuration_the_accelerator_does_not_take(capsys):
    with pytest.raises(SystemExit) as exit_:
        accelerator_main(["--photos", "--pe", "3"])
    assert exit_.value.code == 2
    assert "pe=3 must divide the layer widths" in capsys.readouterr().err


def test_cli_rejects_bad_pixels(tmp_path, capsys):
    path = tmp_path / "bad.npy"
    np.save(path, np.zeros((1, 3, 32, 31), np.uint8))
    assert accelerator_main(["--pixels", str(path), "--out", str(tmp_path / "o.npz")]) == 2
    assert "bad.npy" in capsys.readouterr().err


def test_cli_writes_latency_and_done_cycles_and_prints_the_interval(public_vectors, tmp_path,
                                                                    capsys):
    pixels, out = tmp_path / "two.npy", tmp_path / "out.npz"
    np.save(pixels, public_vectors["pixels"][:3])
    assert accelerator_main(["--pixels", str(pixels), "--out", str(out)]) == 0
    estimate = FracBNNAccelerator(FracBNN.default()).estimate_cycles()
    with np.load(out) as produced:
        np.testing.assert_array_equal(produced["logits"], public_vectors["logits"][:3])
        assert produced["cycles"][0] == estimate.total
        assert (np.diff(produced["done_cycle"]) == estimate.interval).all()
    assert f"one image every {estimate.interval:,} cycles" in capsys.readouterr().out


def test_simulation_speed_counts_the_batch_once_where_images_overlap():
    """Overlapping images: the simulated cycles are the batch's span (the last done cycle),
    not the sum of the latencies."""
    result = SimpleNamespace(tests=[SimpleNamespace(seconds=2.0)])
    run = AcceleratorRun(logits=None, cycles=np.array([100, 180, 260]),
                         done_cycle=np.array([100, 180, 260]), result=result)
    assert run.interval == 80 and run.cycles_per_second == 130.0
    run.done_cycle = None                      # a case that does not stream a batch
    assert run.cycles_per_second == 270.0

