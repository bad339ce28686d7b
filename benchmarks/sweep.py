"""Design-space sweep of the accelerator: ``python -m benchmarks.sweep``.

Over the array's output channels per beat (``pe``), input channels per beat
(``simd_channels``) and the Huffman decoder's symbols per cycle, every configuration
:class:`rtl.schedule.AcceleratorConfig` accepts (or those of a configuration file, see
:mod:`benchmarks.sweep_config`) gets:

* **cycles per image** from the analytical model (:func:`rtl.schedule.estimate_cycles`) with
  the pipeline latencies and weight-decoding times of that configuration, computed from the
  units' parameters by :class:`rtl.builder.UnitBuilder`, the builder of
  :class:`rtl.accelerator.FracBNNAccelerator`, without building anything
  (:mod:`benchmarks.cycle_model`);
* **LUTs** from a model built on synthesis (:mod:`benchmarks.lut_model`, the units synthesised
  by :mod:`synth.yosys` and cached under ``build/synth/sweep``). Only the default configuration
  of the whole accelerator can be built, so ``LUT(config) = LUT(accelerator, default) + sum
  over the configuration-dependent units u of instances(u) * (LUT(u, config) - LUT(u,
  default))``, each unit synthesised on its own at both configurations. It is a model: the
  sequencer's own logic is taken as constant, Yosys optimises across unit boundaries in the
  whole design but not in the units alone, and the weight cache enters as its synthesis with a
  1-symbol decoder at each (pe, simd_channels) with that decoder swapped for the N-symbol one
  (the whole cache is too slow to synthesise at every point; the sweep checks this at the
  default configuration, ``weight_cache_check``).

Outputs (in ``--out``, default ``build/sweep``): ``sweep.json``, ``pareto.png`` (images/s
against LUTs with the Pareto front, the paper's accelerator and the xczu3eg's capacity) and
``cycle_breakdown.png`` (cycles per phase of the default configuration), drawn by
:mod:`benchmarks.plots`; the tables (:mod:`benchmarks.sweep_report`) are printed. The whole
accelerator's LUTs at the default configuration are the ``lut`` that the last ``python -m
benchmarks`` measured (``--benchmarks``, default ``benchmarks.json``); ``python -m
benchmarks`` itself runs the sweep with the figure of its own synthesis.

Usage: ``python -m benchmarks.sweep [--config FILE] [--out DIR] [--skip-synth]
[--benchmarks FILE]``. ``--skip-synth`` leaves out the LUT model and the Pareto plot.
The default grid (pe and simd_channels in {4, 8, 16}) needs about 50 unit syntheses: the 9
weight caches (and the whole one that checks their model) take Yosys half a minute to ten
minutes each, the others under a minute, so the first run takes about half an hour on two
cores; later runs reuse the results of unchanged designs. ``benchmarks/full_grid.toml`` (widths
1 to 16) adds 16 more weight caches.
"""

import argparse
import json
import sys
from pathlib import Path

from fracbnn_golden.files import OutputPathError, check_output_dir
from rtl.schedule import CONFIG_KEYS, AcceleratorConfig

from .cycle_model import CycleModel, config_of, sweep_cycles, validation_rows
from .lut_model import (
    SYNTH_DIR,
    add_modelled_luts,
    synthesise_units,
    unit_designs,
    weight_cache_check,
    whole_weight_cache_design,
)
from .pareto import pareto_front
from .reference import PAPER, XCZU3EG_LUTS
from .sweep_config import DEFAULT_GRID, SweepConfigError, load_sweep_config
from .sweep_report import config_label, render_markdown

__all__ = ["PLOT_FILES", "SWEEP_JSON", "main", "run_sweep", "write_plots"]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "build" / "sweep"
DEFAULT_CONFIG = AcceleratorConfig()


def _progress(message):
    print(message, file=sys.stderr, flush=True)


def run_sweep(grid=DEFAULT_GRID, *, accelerator_lut=None, lut_source=None, synthesise=True,
              synth_dir=SYNTH_DIR, simulated=(), net=None, progress=_progress):
    """The sweep's results (a JSON-able dict): cycles of every configuration of ``grid``,
    with ``synthesise`` and an ``accelerator_lut`` (the whole accelerator at the default
    configuration, from ``lut_source``) the LUT model and the Pareto front, the cycle
    breakdown of the default configuration, and the validation table of ``simulated``."""
    model = CycleModel(net)
    points = sweep_cycles(grid, model, progress)
    results = {"grid": grid.as_dict(), "grid_source": grid.source,
               "clock_mhz": grid.clock_mhz, "units": None, "accelerator_lut": None,
               "accelerator_lut_source": None, "weight_cache_check": None}
    if synthesise and accelerator_lut is not None:
        # Configurations without cycles cannot be built, so they have no LUTs either.
        buildable = [point for point in points if point["cycles_per_image"] is not None]
        designs = unit_designs([config_of(point) for point in buildable])
        entries = synthesise_units([*designs, whole_weight_cache_design()], synth_dir,
                                   progress=progress)
        unit_luts = {name: entry["lut"] for name, entry in entries.items()}
        add_modelled_luts(buildable, accelerator_lut, unit_luts)
        for point in points:
            point.setdefault("lut", None)
        results.update(units=entries, accelerator_lut=accelerator_lut,
                       accelerator_lut_source=lut_source,
                       weight_cache_check=weight_cache_check(unit_luts))
    front = set(pareto_front(points))
    for index, point in enumerate(points):
        point["pareto"] = index in front if point.get("lut") is not None else None
    default = model.estimate(DEFAULT_CONFIG)
    results.update(
        points=points,
        default_configuration={key: getattr(DEFAULT_CONFIG, key) for key in CONFIG_KEYS},
        breakdown={"phases": default.phases, "weight_waits": default.weight_waits,
                   "total": default.total, "interval": default.interval},
        validation=validation_rows(model, simulated))
    return results


# The files write_plots writes (the Pareto plot only when the sweep has LUTs).
PLOT_FILES = {"pareto": "pareto.png", "cycle_breakdown": "cycle_breakdown.png"}
SWEEP_JSON = "sweep.json"


def write_plots(results, out_dir):
    """The Pareto plot (when the sweep has LUTs) and the default configuration's cycle
    breakdown into ``out_dir``: {name: path}."""
    from .plots import cycle_breakdown_plot, pareto_plot

    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    points = results["points"]
    if any(point.get("lut") is not None for point in points):
        written["pareto"] = pareto_plot(points, results["clock_mhz"],
                                        out_dir / PLOT_FILES["pareto"],
                                        paper=PAPER, device_luts=XCZU3EG_LUTS,
                                        default=results["default_configuration"])
    breakdown = results["breakdown"]
    written["cycle_breakdown"] = cycle_breakdown_plot(
        breakdown["phases"], breakdown["weight_waits"], breakdown["interval"],
        out_dir / PLOT_FILES["cycle_breakdown"],
        title=config_label(results["default_configuration"]))
    return written


def _accelerator_lut_from(path):
    try:
        figures = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SweepConfigError(f"{path}: no such file; run `python -m benchmarks` first (its "
                               f"synthesis measures the whole accelerator), or pass "
                               f"--skip-synth") from None
    except (OSError, json.JSONDecodeError) as error:
        raise SweepConfigError(f"{path}: cannot read it as JSON ({error})") from None
    lut = figures.get("lut") if isinstance(figures, dict) else None
    if not isinstance(lut, int) or isinstance(lut, bool) or lut < 1:
        raise SweepConfigError(f"{path}: no whole-accelerator `lut` (was its bench run with "
                               f"--skip-synth?); run `python -m benchmarks`, or pass "
                               f"--skip-synth")
    return lut


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sweep",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="TOML file choosing the grid (see benchmarks/sweep_config.py)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"folder for sweep.json and the plots (default: "
                             f"{DEFAULT_OUT.relative_to(REPO_ROOT)})")
    parser.add_argument("--skip-synth", action="store_true",
                        help="cycles only: no unit synthesis, LUT model or Pareto plot")
    parser.add_argument("--benchmarks", type=Path, default=REPO_ROOT / "benchmarks.json",
                        metavar="FILE", help="benchmarks.json whose `lut` is the whole "
                        "accelerator's at the default configuration (default: the repository's)")
    args = parser.parse_args(argv)
    try:
        grid = load_sweep_config(args.config) if args.config else DEFAULT_GRID
        lut = None if args.skip_synth else _accelerator_lut_from(args.benchmarks)
        check_output_dir(args.out, "--out", files=(SWEEP_JSON, *PLOT_FILES.values()))
    except (SweepConfigError, OutputPathError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    results = run_sweep(grid, accelerator_lut=lut, synthesise=not args.skip_synth,
                        lut_source=f"`lut` of {args.benchmarks.name}")
    args.out.mkdir(parents=True, exist_ok=True)
    plots = write_plots(results, args.out)
    (args.out / SWEEP_JSON).write_text(json.dumps(results, indent=2) + "\n")
    print(render_markdown(results, {name: path.name for name, path in plots.items()}))
    print(f"\nwrote {args.out / SWEEP_JSON} and " + ", ".join(str(p) for p in plots.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
