"""Open a waveform and its save file in GTKWave, as a person would, and look at the window.

:func:`open_view` starts a private X server (Xvfb), opens GTKWave on a waveform and a save file
(:mod:`sim.gtkw`), asks GTKWave (through its Tcl interface, ``--script``) which traces it
displays, with their flags and their values at a marker, and what time range the window shows,
and takes a screenshot of the window (ImageMagick's ``import``). :func:`wave_activity` measures
how much of the screenshot's wave area shows signal changes. The tests use them, and
``python -m sim.gtkwave WAVEFORM SAVEFILE --png OUT.png [--marker TIME]`` makes the
screenshots of ``sim/README.md``.

It needs ``gtkwave`` (with Tcl, as Debian's), ``Xvfb`` and ImageMagick's ``import``
(``apt-get install gtkwave xvfb imagemagick``); :func:`missing_tools` names what is missing.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["FLAGS", "TraceInfo", "View", "missing_tools", "open_view", "vcd_first_time",
           "wave_activity"]

# GTKWave's trace flags (as getTraceFlagsFromIndex reports them).
FLAGS = {"hex": 0x2, "dec": 0x4, "bin": 0x8, "signed": 0x400, "translated": 0x2000,
         "group_begin": 0x800000, "group_end": 0x1000000}
SCREEN = (1600, 900)
TOOLS = {"gtkwave": "gtkwave", "Xvfb": "xvfb", "import": "imagemagick"}

_SCRIPT = """\
set out [open "{info}.tmp" w]
{marker}
set n [gtkwave::getTotalNumTraces]
for {{set i 0}} {{$i < $n}} {{incr i}} {{
    set name [gtkwave::getTraceNameFromIndex $i]
    set flags [gtkwave::getTraceFlagsFromIndex $i]
    puts $out "trace\\t$name\\t$flags\\t[gtkwave::getTraceValueAtMarkerFromIndex $i]"
}}
puts $out "window\\t[gtkwave::getWindowStartTime]\\t[gtkwave::getWindowEndTime]"
puts $out "dump\\t[gtkwave::getMinTime]\\t[gtkwave::getMaxTime]"
close $out
file rename -force "{info}.tmp" "{info}"
"""


@dataclass
class TraceInfo:
    name: str           # as GTKWave shows it (an alias from its last dot on)
    flags: int
    value: str          # at the marker ("" without one, or for a group)

    def has(self, flag):
        return bool(self.flags & FLAGS[flag])


@dataclass
class View:
    """What GTKWave showed: the traces in display order, the time range of the window and of
    the waveform (in the waveform's time unit), and the screenshot."""

    traces: list = field(default_factory=list)
    window: tuple = (0, 0)
    dump: tuple = (0, 0)
    png: Path | None = None
    log: str = ""

    def find(self, name):
        """The traces named ``name``."""
        return [trace for trace in self.traces if trace.name == name]

    def group(self, name):
        """The traces of the (first) group ``name``, nested groups' included."""
        inside, depth = [], 0
        for trace in self.traces:
            if depth:
                if trace.has("group_begin"):
                    depth += 1
                elif trace.has("group_end"):
                    depth -= 1
                    if not depth:
                        return inside
                else:
                    inside.append(trace)
            elif trace.name == name and trace.has("group_begin"):
                depth = 1
        return inside


def missing_tools():
    """The Debian packages of the tools :func:`open_view` needs that are not on PATH."""
    return [package for tool, package in TOOLS.items() if shutil.which(tool) is None]


def _start_xvfb(size):
    """Start Xvfb on a free display; returns (process, display)."""
    read, write = os.pipe()
    process = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", f"{size[0]}x{size[1]}x24",
         "-nolisten", "tcp"], pass_fds=(write,), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as handle:
        number = handle.readline().strip()
    if not number:
        process.kill()
        process.wait()
        raise RuntimeError("Xvfb did not start")
    return process, f":{number}"


def _stop(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _parse(text):
    view = View()
    for line in text.splitlines():
        kind, *fields = line.split("\t")
        if kind == "trace" and len(fields) == 3:
            name, flags, value = fields
            view.traces.append(TraceInfo(name, int(flags or 0), value))
        elif kind in ("window", "dump") and len(fields) == 2:
            setattr(view, kind, (int(fields[0]), int(fields[1])))
    return view


def open_view(waveform, save_file, png=None, *, marker=None, size=SCREEN, timeout=180,
              settle=2.0):
    """Open ``waveform`` with ``save_file`` in GTKWave under Xvfb; returns a :class:`View`.

    ``marker`` (a time in the waveform's unit) places GTKWave's marker, whose values the
    traces then report. ``png`` is where the screenshot goes (taken ``settle`` seconds after
    GTKWave has answered, so that it has drawn the window). Raises RuntimeError when GTKWave
    does not answer within ``timeout`` seconds."""
    missing = missing_tools()
    if missing:
        raise RuntimeError(f"missing tools; install the packages {', '.join(missing)}")
    with tempfile.TemporaryDirectory(prefix="fracbnn-gtkwave-") as folder:
        info = Path(folder) / "info.txt"
        script = Path(folder) / "view.tcl"
        script.write_text(_SCRIPT.format(
            info=info, marker=f"gtkwave::setMarker {int(marker)}" if marker is not None else ""))
        log_path = Path(folder) / "gtkwave.log"
        xvfb, display = _start_xvfb(size)
        gtkwave = None
        try:
            env = {**os.environ, "DISPLAY": display, "HOME": folder}   # no user .gtkwaverc
            with open(log_path, "w") as log:
                gtkwave = subprocess.Popen(
                    ["gtkwave", "--script", str(script), str(Path(waveform).resolve()),
                     str(Path(save_file).resolve())],
                    env=env, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
            deadline = time.monotonic() + timeout
            while not info.exists():
                if gtkwave.poll() is not None:
                    raise RuntimeError(f"gtkwave exited ({gtkwave.returncode}):\n"
                                       f"{log_path.read_text(errors='replace')[-2000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gtkwave did not answer within {timeout} s:\n"
                                       f"{log_path.read_text(errors='replace')[-2000:]}")
                time.sleep(0.2)
            view = _parse(info.read_text())
            if png is not None:
                time.sleep(settle)
                png = Path(png)
                subprocess.run(["import", "-display", display, "-window", "root", str(png)],
                               check=True, capture_output=True, timeout=60)
                view.png = png
            view.log = log_path.read_text(errors="replace")
            return view
        finally:
            if gtkwave is not None:
                _stop(gtkwave)
            _stop(xvfb)


def wave_activity(png, left=0.35, top=0.12):
    """How much of a GTKWave screenshot's wave area shows signal changes: the number of pixel
    columns (right of ``left`` and below ``top``, as fractions of the image) that hold a
    vertical run of at least three trace-coloured (green) pixels, i.e. an edge of a trace.
    A window zoomed onto a few picoseconds of a run shows flat lines only (almost none)."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("RGB")).astype(int)
    height, width, _ = pixels.shape
    area = pixels[int(height * top):, int(width * left):]
    red, green, blue = area[..., 0], area[..., 1], area[..., 2]
    trace = (green > 150) & (red < 120) & (blue < 120)
    vertical = trace[:-2] & trace[1:-1] & trace[2:]
    return int(vertical.any(axis=0).sum())


def vcd_first_time(path, name, value="1"):
    """The first time at which the top-level signal ``name`` of the VCD ``path`` takes
    ``value`` (a bit), or None."""
    code = None
    time_now = 0
    with open(path, "rb") as handle:
        for raw in handle:
            line = raw.strip()
            if code is None:
                parts = line.split()
                if parts[:1] == [b"$var"] and len(parts) >= 5 and parts[4] == name.encode():
                    code = parts[3]
                continue
            if line.startswith(b"#"):
                time_now = int(line[1:])
            elif line == value.encode() + code:
                return time_now
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sim.gtkwave",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("waveform")
    parser.add_argument("save_file")
    parser.add_argument("--png", help="write a screenshot of the window here")
    parser.add_argument("--marker", type=int, help="marker time (in the waveform's unit)")
    parser.add_argument("--marker-at", metavar="SIGNAL",
                        help="put the marker where this top-level 1-bit signal first rises")
    args = parser.parse_args(argv)
    marker = args.marker
    if args.marker_at:
        marker = vcd_first_time(args.waveform, args.marker_at)
        if marker is None:
            parser.error(f"--marker-at: {args.marker_at} never rises in {args.waveform}")
    try:
        view = open_view(args.waveform, args.save_file, args.png, marker=marker)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for trace in view.traces:
        print(f"{trace.name:24} {trace.flags:#9x} {trace.value}")
    print(f"window {view.window[0]}..{view.window[1]}, waveform {view.dump[0]}..{view.dump[1]}")
    if view.png:
        print(f"screenshot: {view.png} (wave activity {wave_activity(view.png)} columns)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
