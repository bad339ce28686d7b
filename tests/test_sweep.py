# amaranth: UnusedElaboratable=no
"""The design-space sweep: the cycle model at every configuration (benchmarks.cycle_model), the
LUT model (benchmarks.lut_model), the Pareto front, the validation table and the plots.
Synthesis figures are stand-ins passed to the pure functions (nothing is synthesised or
simulated here)."""

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks import cycle_model, lut_model, sweep
from benchmarks.pareto import pareto_front
from benchmarks.reference import PAPER, XCZU3EG_LUTS
from benchmarks.sweep_config import DEFAULT_GRID, SweepGrid, load_sweep_config
from benchmarks.sweep_report import render_markdown, validation_markdown
from rtl.schedule import CONFIG_KEYS, AcceleratorConfig

# Cycles are cheap: the cycle tests run on every configuration the accelerator accepts.
FULL_GRID = load_sweep_config(Path(__file__).resolve().parent.parent / "benchmarks"
                              / "full_grid.toml")


@pytest.fixture(scope="module")
def model():
    return cycle_model.CycleModel()


@pytest.fixture(scope="module")
def points(model):
    return cycle_model.sweep_cycles(FULL_GRID, model, progress=lambda message: None)


def by_config(points):
    return {tuple(point[key] for key in CONFIG_KEYS): point for point in points}


# ---- cycles -----------------------------------------------------------------------------------

def test_default_point_is_the_accelerators_own_estimate(points, net):
    from rtl.accelerator import FracBNNAccelerator

    default = by_config(points)[tuple(getattr(AcceleratorConfig(), key) for key in CONFIG_KEYS)]
    estimate = FracBNNAccelerator(net).estimate_cycles()
    assert default["cycles_per_image"] == estimate.interval
    assert default["latency_cycles"] == estimate.total
    assert default["images_per_s"] == pytest.approx(250e6 / default["cycles_per_image"],
                                                    abs=0.05)


def test_every_configuration_of_the_grid_has_a_point(points):
    assert len(points) == len(FULL_GRID.configs())
    assert len(by_config(points)) == len(points)


@pytest.mark.parametrize("key", ["pe", "simd_channels", "decoder_symbols_per_cycle",
                                 "pixels_per_beat"])
def test_more_parallelism_never_costs_cycles(points, key):
    table = by_config(points)
    compared = 0
    for config, point in table.items():
        doubled = dict(zip(CONFIG_KEYS, config))
        doubled[key] *= 2
        other = table.get(tuple(doubled[k] for k in CONFIG_KEYS))
        if other is None or point["cycles_per_image"] is None \
                or other["cycles_per_image"] is None:
            continue
        compared += 1
        assert other["cycles_per_image"] <= point["cycles_per_image"], (config, key)
    assert compared >= 10


@pytest.mark.parametrize("key", ["pe", "simd_channels"])
def test_array_width_divides_the_layer_beats(points, key):
    # Doubling a width halves every PG layer's beats, which dominate the smallest arrays'
    # cycles (the fixed phases, LOAD and the head, are a small part of them).
    table = by_config(points)
    small = table[(1, 1, 1, 1)]["cycles_per_image"]
    doubled = table[(2, 1, 1, 1) if key == "pe" else (1, 2, 1, 1)]["cycles_per_image"]
    assert doubled < 0.55 * small


def test_two_pixels_per_beat_halve_the_stride_1_layers(points):
    # Every layer but the two stride-2 ones takes half the beats; the smallest arrays' cycles
    # are nearly all beats.
    table = by_config(points)
    one, two = (table[(1, 1, 1, pixels)]["cycles_per_image"] for pixels in (1, 2))
    assert 0.5 * one < two < 0.56 * one


def test_cycles_scale_with_the_images_per_second(points):
    grid = dataclasses.replace(DEFAULT_GRID, pe=(16,), simd_channels=(16,), clock_mhz=100)
    slow = cycle_model.sweep_cycles(grid, cycle_model.CycleModel(), progress=lambda message: None)
    fast = [point for point in points if point["pe"] == 16 and point["simd_channels"] == 16]
    assert len(slow) == len(fast)
    for a, b in zip(slow, fast):
        assert a["cycles_per_image"] == b["cycles_per_image"]
        if a["cycles_per_image"] is None:
            assert a["images_per_s"] is None and a["note"] == b["note"]
            continue
        assert a["images_per_s"] == pytest.approx(b["images_per_s"] * 100 / 250, rel=1e-4)


def test_weight_waits_are_part_of_the_total(model):
    estimate = model.estimate(AcceleratorConfig(decoder_symbols_per_cycle=1))
    assert estimate.total == sum(estimate.phases.values()) + sum(estimate.weight_waits.values())


# ---- the units of the LUT model ---------------------------------------------------------------

def test_swept_units_at_the_default_are_the_accelerators(net):
    from rtl.accelerator import FracBNNAccelerator

    # The units the accelerator holds: its top level, elaborated (not its submodules).
    accelerator = FracBNNAccelerator(net).elaborate(None).submodules
    array = lut_model.SWEPT_UNITS[0].design(AcceleratorConfig()).component()
    built = accelerator.msb_array
    for attribute in ("pe", "simd", "groups", "max_beats", "acc_width", "latency"):
        assert getattr(array, attribute) == getattr(built, attribute), attribute
    units = {unit.name: unit for unit in lut_model.SWEPT_UNITS}
    weights = units["weight_cache_at_n1"].design(AcceleratorConfig()).component()
    assert weights.row_bits == accelerator.weights.row_bits
    assert weights.rows == accelerator.weights.rows
    assert weights.symbols_per_cycle == 1
    decoder = units["huffman_decoder"].design(AcceleratorConfig()).component()
    built = accelerator.weights.elaborate(None).submodules.decoder
    assert type(decoder) is type(built)
    for attribute in ("symbols_per_cycle", "word_width", "max_length", "max_block_bits",
                      "max_count"):
        assert getattr(decoder, attribute) == getattr(built, attribute), attribute


def test_unit_designs_cover_every_point_once():
    configs = DEFAULT_GRID.configs()
    designs = lut_model.unit_designs(configs)
    names = [design.name for design in designs]
    assert len(names) == len(set(names))
    # A unit that depends on pe and the pixels per beat alone is one design per pair.
    assert sum(name.startswith("sweep_precision_gate_") for name in names) == \
        len(DEFAULT_GRID.pe) * len(DEFAULT_GRID.pixels_per_beat)
    # The decoder at N = 1, subtracted from the weight cache, is the decoder unit's N = 1 design.
    assert sum(name.startswith("sweep_huffman_decoder_") for name in names) == \
        len(DEFAULT_GRID.pe) * len(DEFAULT_GRID.decoder_symbols_per_cycle)
    assert sum(name.startswith("sweep_xnor_popcount_array_") for name in names) == \
        len(DEFAULT_GRID.pe) * len(DEFAULT_GRID.simd_channels)
    # Every design the LUT model asks for is in the list (with stand-in LUT counts).
    luts = {name: 100 for name in names}
    points = [{key: getattr(config, key) for key in CONFIG_KEYS} for config in configs]
    lut_model.add_modelled_luts(points, 30_000, luts)
    # Equal units: a point differs from the default by its units' copies alone (the arrays,
    # one pair per pixel of a beat).
    default = AcceleratorConfig()
    for config, point in zip(configs, points):
        assert point["lut"] == 30_000 + 100 * sum(unit.count(config) - unit.count(default)
                                                  for unit in lut_model.SWEPT_UNITS)


# ---- the LUT model ----------------------------------------------------------------------------

def stand_in_luts(designs):
    """Stand-in unit LUTs growing with the parameters in the design's name, as synthesis's
    would (the figures are made up; the model's arithmetic is what is tested)."""
    luts = {}
    for design in designs:
        size = 1
        for value in design.params.values():
            size *= value
        luts[design.name] = 50 + 7 * size + len(design.name)
    return luts


def test_lut_model_arithmetic():
    instances = {"array": 2, "gate": 1}
    default = {"array": 1000, "gate": 100}
    assert lut_model.lut_model(40_000, default, default, instances) == 40_000
    assert lut_model.lut_model(40_000, default, {"array": 400, "gate": 130}, instances) == \
        40_000 - 2 * 600 + 30
    # Twice the arrays (two pixels per beat) at a configuration.
    assert lut_model.lut_model(40_000, default, {"array": 400, "gate": 130}, instances,
                               {"array": 4, "gate": 1}) == 40_000 - 2 * 1000 + 4 * 400 + 30
    with pytest.raises(ValueError, match="instances"):
        lut_model.lut_model(40_000, default, {"array": 1}, instances)


def test_modelled_luts_at_the_default_are_the_measured_accelerator():
    configs = DEFAULT_GRID.configs()
    luts = stand_in_luts(lut_model.unit_designs(configs))
    points = [{key: getattr(config, key) for key in CONFIG_KEYS} for config in configs]
    lut_model.add_modelled_luts(points, 37_974, luts)
    table = by_config(points)
    default = AcceleratorConfig()
    assert table[tuple(getattr(default, key) for key in CONFIG_KEYS)]["lut"] == 37_974
    # Each point differs from the default by its units' differences, instances counted (the
    # N = 1 decoder is subtracted).
    for pixels in (1, 2):
        config = AcceleratorConfig(pe=4, simd_channels=8, decoder_symbols_per_cycle=2,
                                   pixels_per_beat=pixels)
        expected = 37_974 + sum(
            unit.count(config) * luts[unit.design(config).name]
            - unit.count(default) * luts[unit.design(default).name]
            for unit in lut_model.SWEPT_UNITS)
        assert table[(4, 8, 2, pixels)]["lut"] == expected
    # Stand-in units that grow with the parameters make smaller arrays smaller designs.
    assert table[(4, 4, 1, 1)]["lut"] < table[(16, 16, 8, 2)]["lut"]


# ---- the Pareto front -------------------------------------------------------------------------

def dominated(point, others):
    return any(other["lut"] <= point["lut"] and other["images_per_s"] >= point["images_per_s"]
               and (other["lut"], other["images_per_s"]) != (point["lut"], point["images_per_s"])
               for other in others)


def check_front(points):
    front = pareto_front(points)
    complete = [point for point in points if point.get("lut") is not None
                and point.get("images_per_s") is not None]
    for index in front:
        assert not dominated(points[index], complete)
    for index, point in enumerate(points):
        if point in complete and index not in front:
            assert dominated(point, [points[i] for i in front])
    luts = [points[index]["lut"] for index in front]
    assert luts == sorted(luts)
    return front


def test_pareto_front_of_the_generated_points(points):
    buildable = [dict(point) for point in points if point["cycles_per_image"] is not None]
    luts = stand_in_luts(lut_model.unit_designs([cycle_model.config_of(point)
                                                 for point in buildable]))
    complete = lut_model.add_modelled_luts(buildable, 37_974, luts)
    front = check_front(complete)
    assert 1 < len(front) < len(complete)
    # The fastest configuration and the smallest one are always on the front.
    fastest = max(range(len(complete)), key=lambda i: (complete[i]["images_per_s"] or 0,
                                                       -complete[i]["lut"]))
    smallest = min(range(len(complete)), key=lambda i: (complete[i]["lut"],
                                                        -(complete[i]["images_per_s"] or 0)))
    assert fastest in front and smallest in front


@given(st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6) | st.none()), max_size=25))
def test_pareto_front_definition(pairs):
    points = [{"lut": lut, "images_per_s": speed} for lut, speed in pairs]
    check_front(points)


def test_pareto_front_keeps_ties():
    points = [{"lut": 10, "images_per_s": 5.0}, {"lut": 10, "images_per_s": 5.0},
              {"lut": 12, "images_per_s": 5.0}, {"lut": 8, "images_per_s": 1.0}]
    assert pareto_front(points) == [3, 0, 1]


# ---- validation and reports -------------------------------------------------------------------

def test_validation_rows_compare_with_the_model(model):
    config = AcceleratorConfig()
    analytical = model.estimate(config).interval
    keys = {key: getattr(config, key) for key in CONFIG_KEYS}
    rows = cycle_model.validation_rows(model, [
        {"config": keys, "cycles_per_image": analytical},
        {"config": keys, "cycles_per_image": analytical + 100},
    ])
    assert [row["analytical"] for row in rows] == [analytical] * 2
    assert rows[0]["difference"] == 0
    assert rows[1]["difference"] == pytest.approx(-100 / (analytical + 100), abs=1e-5)
    table = validation_markdown(rows)
    assert f"{analytical + 100:,}" in table and "+0.00%" in table


def small_grid():
    return SweepGrid(pe=(8, 16), simd_channels=(8, 16), decoder_symbols_per_cycle=(2, 4),
                     source="a test grid")


def test_run_sweep_without_synthesis_and_its_report(model):
    config = AcceleratorConfig()
    simulated = [{"config": {key: getattr(config, key) for key in CONFIG_KEYS},
                  "cycles_per_image": 12_345}]
    results = sweep.run_sweep(small_grid(), synthesise=False, simulated=simulated,
                              net=model.net, progress=lambda message: None)
    assert results["accelerator_lut"] is None
    assert all(point.get("lut") is None and point["pareto"] is None
               for point in results["points"])
    assert results["breakdown"]["total"] == model.estimate(config).total
    assert results["breakdown"]["interval"] == model.estimate(config).interval
    assert results["validation"][0]["simulated"] == 12_345
    text = render_markdown(results)
    assert "not modelled" in text and "Analytical vs simulated" in text and "12,345" in text


def test_plots_are_written(tmp_path, points, model):
    pytest.importorskip("matplotlib")
    chosen = [dict(point) for point in points
              if point["pe"] >= 4 and point["cycles_per_image"] is not None]
    luts = stand_in_luts(lut_model.unit_designs([cycle_model.config_of(p) for p in chosen]))
    lut_model.add_modelled_luts(chosen, 37_974, luts)
    front = set(pareto_front(chosen))
    for index, point in enumerate(chosen):
        point["pareto"] = index in front
    estimate = model.estimate(AcceleratorConfig())
    results = {"points": chosen, "clock_mhz": 250,
               "default_configuration": dataclasses.asdict(AcceleratorConfig()),
               "breakdown": {"phases": estimate.phases, "weight_waits": estimate.weight_waits,
                             "total": estimate.total, "interval": estimate.interval}}
    written = sweep.write_plots(results, tmp_path)
    assert set(written) == {"pareto", "cycle_breakdown"}
    for path in written.values():
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 10_000
    assert PAPER["lut"] < XCZU3EG_LUTS          # the plot marks both on one axis


def test_weight_cache_check_compares_the_terms_with_the_whole():
    configs = [AcceleratorConfig()]
    designs = [*lut_model.unit_designs(configs), lut_model.whole_weight_cache_design()]
    luts = {design.name: 1000 for design in designs}
    units = {unit.name: unit for unit in lut_model.SWEPT_UNITS}
    default = AcceleratorConfig()
    luts[units["weight_cache_at_n1"].design(default).name] = 3225
    luts[units["huffman_decoder"].design(default).name] = 1811
    luts[units["huffman_decoder_at_n1"].design(default).name] = 654
    luts[lut_model.whole_weight_cache_design().name] = 4573
    assert lut_model.weight_cache_check(luts) == {
        "synthesised_whole": 4573, "modelled": 3225 + 1811 - 654, "difference": -191}
    # The whole cache is not one of the model's designs (it would be synthesised twice).
    assert lut_model.whole_weight_cache_design().name not in {
        design.name for design in lut_model.unit_designs(configs)}
