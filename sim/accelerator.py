# amaranth: UnusedElaboratable=no
"""Run the whole accelerator in RTL simulation on a batch of images.

``python -m sim.accelerator --pixels in.npy --out out.npz [--waves] [--sim icarus]``: builds
:class:`rtl.accelerator.FracBNNAccelerator` with the bundled model or ``--model FILE`` at the
default configuration or the one ``--pe``, ``--simd-channels`` and
``--decoder-symbols-per-cycle`` give (Verilator by default; the build is cached in
``build/sim/``, per configuration), streams the images (uint8
``[N, 3, 32, 32]``, ``.npy`` or an ``.npz`` with ``pixels``) through it, writes ``logits``
(int16 ``[N, 10]``), ``cycles`` (int64 ``[N]``: each image's latency, first pixel transfer to
logits) and ``done_cycle`` (int64 ``[N]``: the cycle each image's logits became valid, counted
from the batch's first pixel transfer; the images are streamed back to back and the logits taken
at once, so its differences are the interval between images) to ``out.npz``, compares the
logits with the golden model and exits non-zero on any mismatch.

``python -m sim.accelerator --photos [--waves]`` does the same for the bundled photos
(``fracbnn_golden/data/photos``) and prints a table; with ``--waves`` it then simulates the first
photo once more with a waveform of the top-level ports and prints the GTKWave command.
"""

import argparse
import hashlib
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import amaranth
import numpy as np

from fracbnn_golden import CLASSES, FracBNN
from fracbnn_golden.files import check_output_file
from fracbnn_golden.images import bundled_photos, load_image, load_pixels
from fracbnn_golden.model import check_pixels
from rtl.accelerator import FracBNNAccelerator
from rtl.popcount import BehaviouralPopcount
from rtl.schedule import CONFIG_KEYS, AcceleratorConfig, ConfigError

from .harness import AcceleratorHarness
from .runner import (
    DEFAULT_BUILD_ROOT,
    SIM_LOG,
    BuildFailed,
    SimulatorUnavailable,
    run,
    simulator_name,
)

__all__ = ["AcceleratorRun", "accelerator_params", "interval", "run_accelerator",
           "source_key"]

SIM_DIR = Path(__file__).resolve().parent
RTL_DIR = SIM_DIR.parent / "rtl"
TOPLEVEL = "fracbnn_accelerator"
CLOCK_MHZ = 250
# Waveforms hold the top level only (the harness's and the core's ports): the whole design
# would write gigabytes per image.
WAVE_BUILD_ARGS = ("--trace-depth", "1")
TEST_MODULE = "sim.tb_accelerator"
# Cycles an image may take before a test gives up, in multiples of the cycle model's latency
# (a configuration's latency ranges from 20,000 to 4.5 million cycles): generous, an image takes
# one; the limit only turns a hang into a failure.
CYCLE_LIMIT_LATENCIES = 10


def _sources_digest():
    digest = hashlib.sha256()
    for path in [*sorted(RTL_DIR.glob("*.py")), Path(__file__), SIM_DIR / "harness.py"]:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.digest()


# The gateware, the harness and this module as this process imported them (they are imported
# above): a file edited while a run is in progress must not give the old design its new key.
_SOURCES = _sources_digest()


def source_key(net, config):
    """A hash of everything the accelerator's Verilog depends on: the RTL modules (as imported),
    the model parameters, the configuration and the Amaranth version (conversion takes half a
    minute, so the simulation cache is keyed by this instead of the Verilog)."""
    digest = hashlib.sha256(_SOURCES)
    for key in sorted(net.params):
        digest.update(key.encode() + np.ascontiguousarray(net.params[key]).tobytes())
    digest.update(repr(config).encode() + amaranth.__version__.encode())
    return digest.hexdigest()


def accelerator_params(component):
    """The testbench parameters of ``component`` (see :mod:`sim.tb_accelerator`)."""
    members = component.signature.members
    layout = members["writeback"].signature.members["payload"].shape
    results = members["results"].signature.members["payload"].shape
    layers = [{"trace": "bn1", "channels": 16, "size": 32}]
    for plan in component.plans:
        block, k = plan.name.rsplit(".conv", 1)
        layers.append({"trace": f"{block}.out{k}", "channels": plan.cout,
                       "size": plan.out_size})
    return {
        "cycle_limit": CYCLE_LIMIT_LATENCIES * component.core.estimate_cycles().total,
        "pe": component.config.pe,
        "writeback": {name: [field.offset, field.width] for name, field in layout},
        "results": {name: [field.offset, field.width] for name, field in results},
        "layers": layers,
    }


def interval(done_cycle):
    """The steady-state interval between back-to-back images: the median difference of their
    ``done_cycle`` (None for fewer than two images)."""
    if done_cycle is None or len(done_cycle) < 2:
        return None
    return int(np.median(np.diff(done_cycle)))


@dataclass
class AcceleratorRun:
    """What :func:`run_accelerator` gives: per image the logits, ``cycles`` (its latency) and
    ``done_cycle`` (the cycle its logits became valid, counted from the batch's first pixel
    transfer; None where the test case does not stream a batch), and the run itself."""
    logits: np.ndarray
    cycles: np.ndarray
    done_cycle: np.ndarray
    result: object          # sim.runner.SimResult

    @property
    def interval(self):
        """:func:`interval` of ``done_cycle``."""
        return interval(self.done_cycle)

    @property
    def cycles_per_second(self):
        """Simulated clock cycles per second of wall time over the test (which includes the
        testbench's golden model): the batch's cycles, from its first pixel transfer to the last
        image's logits (images overlap, so not the sum of their latencies)."""
        simulated = self.cycles.sum() if self.done_cycle is None else self.done_cycle[-1]
        return float(simulated) / sum(test.seconds for test in self.result.tests)


def run_accelerator(pixels, *, testcase="images_bit_exact", simulator=None, waves=None,
                    config=None, check=True, build_root=DEFAULT_BUILD_ROOT, progress=False,
                    net=None):
    """Simulate the accelerator on ``pixels`` (uint8 [N, 3, 32, 32]) with the cocotb test
    ``testcase`` of :mod:`sim.tb_accelerator`; returns an :class:`AcceleratorRun` (logits and
    cycles are filled by ``images_bit_exact``). Builds are cached under ``build_root``;
    ``progress`` shows the build's and the run's progress on the console. ``net``: the
    model (a :class:`fracbnn_golden.FracBNN`; default the bundled one)."""
    pixels = check_pixels(pixels)
    net = net if net is not None else FracBNN.default()
    config = config or AcceleratorConfig()
    component = AcceleratorHarness(FracBNNAccelerator(net, config))
    # Verilator switches tracing on per run: one build serves runs with and without waves.
    verilator = simulator_name(simulator) == "verilator"
    with tempfile.TemporaryDirectory(prefix="fracbnn-sim-") as folder:
        data, out = Path(folder) / "pixels.npz", Path(folder) / "out.npz"
        np.savez(data, pixels=pixels)
        model = Path(folder) / "model.npz"        # the testbench's golden model
        np.savez(model, **net.params)
        result = run(component, TEST_MODULE, accelerator_params(component), name=TOPLEVEL,
                     simulator=simulator, waves=waves, testcase=testcase, check=check,
                     build_args=WAVE_BUILD_ARGS if verilator else (), trace_build=verilator,
                     platform=BehaviouralPopcount(), top_level_only=True,
                     extra_env={"FRACBNN_SIM_DATA": str(data), "FRACBNN_SIM_OUT": str(out),
                                "FRACBNN_SIM_MODEL": str(model)},
                     source_key=source_key(net, config), build_root=build_root,
                     progress=progress)
        logits = cycles = done_cycle = None
        if out.exists():
            with np.load(out) as produced:
                logits, cycles = produced["logits"], produced["cycles"]
                done_cycle = produced["done_cycle"] if "done_cycle" in produced else None
    return AcceleratorRun(logits, cycles, done_cycle, result)


def _table(names, run, golden, classes=CLASSES):
    """Per image its class, whether its logits equal the golden model's, its latency and when
    it finished; then the interval between images and the images/s it gives."""
    rows = [("image", "class", "logits = golden", "latency (cycles)", "done at cycle")]
    for name, row, want, count, done in zip(names, run.logits, golden, run.cycles,
                                            run.done_cycle):
        rows.append((name, classes[int(np.argmax(row))],
                     "yes" if (row == want).all() else "NO", str(count), str(done)))
    widths = [max(len(row[n]) for row in rows) for n in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in rows]
    if run.interval is not None:
        lines.append(f"one image every {run.interval:,} cycles on this stream (the median "
                     f"difference of the done cycles): {CLOCK_MHZ * 1e6 / run.interval:,.0f} "
                     f"images/s at {CLOCK_MHZ} MHz")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sim.accelerator",
                                     description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--pixels",
                        help="uint8 [N, 3, 32, 32] images: .npy, or .npz with 'pixels'")
    source.add_argument("--photos", action="store_true",
                        help="the bundled photos (fracbnn_golden/data/photos)")
    parser.add_argument("--out", help="output .npz (logits, cycles); required with --pixels")
    parser.add_argument("--waves", action="store_true",
                        help="write a waveform (top-level ports) and a GTKWave save file")
    parser.add_argument("--sim", help="verilator (default) or icarus; overrides $SIM")
    parser.add_argument("--model", help="model file (.npz, e.g. from python -m fracbnn_train); "
                                        "default: the bundled CIFAR-10 model")
    default = AcceleratorConfig()
    for key in CONFIG_KEYS:
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, default=getattr(default, key),
                            help=f"the accelerator's {key} (default {getattr(default, key)})")
    args = parser.parse_args(argv)
    if args.pixels and not args.out:
        parser.error("--pixels needs --out")

    # Every argument is checked here, before the first build (a minute or two).
    try:
        simulator_name(args.sim)
    except ValueError as error:
        parser.error(f"--sim / $SIM: {error}")
    try:
        config = AcceleratorConfig(**{key: getattr(args, key) for key in CONFIG_KEYS})
    except ConfigError as error:
        parser.error(str(error))
    try:
        if args.out:
            check_output_file(args.out, "--out", suffix=".npz")
        net = FracBNN.default() if args.model is None else FracBNN.from_npz(args.model)
        if args.photos:
            paths = bundled_photos()
            names = [path.stem for path in paths]
            pixels = np.stack([load_image(path) for path in paths])
        else:
            pixels = load_pixels(args.pixels)
            names = [f"image {index}" for index in range(len(pixels))]
    except (OSError, ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not len(pixels):
        print(f"error: {args.pixels}: an empty batch (shape {list(pixels.shape)}); nothing to "
              "simulate", file=sys.stderr)
        return 2
    print(f"simulating {len(pixels)} image(s) (the first build of the accelerator takes a "
          f"minute or two; it is cached in build/sim/)", flush=True)
    started = time.monotonic()
    # With --pixels the one run writes the waveform; with --photos one photo is re-run with
    # waves (the same build).
    try:
        run = run_accelerator(pixels, simulator=args.sim, waves=args.waves and not args.photos,
                              config=config, check=False, progress=True, net=net)
    except SimulatorUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BuildFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    result = run.result
    print(f"{'built' if result.rebuilt else 'cached build'} in {result.build_dir}, "
          f"{time.monotonic() - started:.0f} s")
    if run.logits is None:
        message = "; ".join(t.message for t in result.failures) or "no result"
        print(f"error: the simulation failed: {message}\nlog: {result.build_dir / SIM_LOG}",
              file=sys.stderr)
        return 1
    if args.out:
        np.savez(args.out, logits=run.logits, cycles=run.cycles, done_cycle=run.done_cycle)
        print(f"wrote {args.out}")
    golden = net.logits(pixels)
    print(_table(names, run, golden, net.class_names))
    if args.waves and args.photos:
        print(f"simulating {names[0]} again with waves", flush=True)
        result = run_accelerator(pixels[:1], simulator=args.sim, waves=True, config=config,
                                 check=False, progress=True, net=net).result
    if result.waveform:
        print(f"waveform: {result.waveform}\nopen it with: gtkwave {result.waveform} "
              f"{result.gtkw}")
    wrong = int((run.logits != golden).any(axis=1).sum())
    if wrong or not result.passed:
        print(f"error: {wrong} image(s) differ from the golden model"
              + ("" if result.passed else f"; log: {result.build_dir / SIM_LOG}"),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
