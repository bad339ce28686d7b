"""Progress of long steps (simulator builds, simulations, Yosys runs) on the console.

:class:`Progress` polls a status function in a background thread while a step runs. On a
terminal it keeps one line up to date (``  label: compiling 12/45 objects, 0:42``) and clears it
at the end; elsewhere (CI logs, pipes) it prints a plain line when the stage changes and at most
every :data:`PLAIN_INTERVAL` seconds otherwise, none in a step's first :data:`PLAIN_DELAY`
seconds, so that a log stays short.

The status functions for Verilator builds (:func:`verilator_status`), cocotb runs
(:func:`cocotb_status`) and Yosys (:func:`yosys_status`) read the files the tools write.
"""

import re
import shutil
import sys
import threading
import time
from pathlib import Path

__all__ = ["PLAIN_INTERVAL", "Progress", "cocotb_status", "verilator_status", "yosys_status"]

# Seconds between plain progress lines of one stage (not on a terminal), and before the first
# (a short step prints none).
PLAIN_INTERVAL = 30.0
PLAIN_DELAY = 10.0
# Seconds between polls.
POLL_INTERVAL = 0.5


def elapsed(seconds):
    """``m:ss`` (or ``h:mm:ss``)."""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class Progress:
    """A context manager that reports ``status()`` (a string, or None for nothing new) with
    the elapsed time while its block runs.

    ``stream`` defaults to the standard output; ``terminal`` (default: whether ``stream`` is a
    terminal) selects the updating line over plain lines; ``enabled=False`` reports nothing.
    """

    def __init__(self, label, status, *, stream=None, terminal=None, enabled=True,
                 interval=POLL_INTERVAL, plain_interval=PLAIN_INTERVAL,
                 plain_delay=PLAIN_DELAY):
        self.label, self.status = label, status
        self.stream = stream or sys.stdout
        if terminal is None:
            isatty = getattr(self.stream, "isatty", None)
            terminal = bool(isatty and isatty())
        self.terminal, self.enabled = terminal, enabled
        self.interval, self.plain_interval = interval, plain_interval
        self.plain_delay = plain_delay
        self.started = None
        self._stop = threading.Event()
        self._thread = None
        self._shown = False
        self._last_stage = None
        self._last_plain = 0.0

    def __enter__(self):
        self.started = time.monotonic()
        if self.enabled:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            if self.terminal and self._shown:
                self._write("\r\033[K")
        return False

    def _write(self, text):
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def _run(self):
        while not self._stop.wait(self.interval if self._shown else min(self.interval, 0.2)):
            self.poll()

    def poll(self):
        """Report the status once (the thread calls this every ``interval`` seconds)."""
        try:
            status = self.status()
        except Exception:           # a file half written, a tool's output not yet there
            status = None
        if not status:
            return
        now = time.monotonic()
        line = f"  {self.label}: {status}, {elapsed(now - self.started)}"
        if self.terminal:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self._write("\r\033[K" + line[:width])
            self._shown = True
            return
        if now - self.started < self.plain_delay:
            return
        stage = re.split(r"\d", status)[0]         # "compiling 3/45 objects": "compiling "
        if stage != self._last_stage or now - self._last_plain >= self.plain_interval:
            self._write(line + "\n")
            self._last_stage, self._last_plain = stage, now
            self._shown = True


def _names(text, variable):
    """The names a Verilator makefile lists in ``variable += \\`` lines."""
    names = []
    for match in re.finditer(rf"^{variable} \+?= \\\n((?:[ \t]+\S+ \\\n)*)", text, re.M):
        names += match.group(1).replace("\\", " ").split()
    return names


def verilator_objects(build_dir):
    """The object files a Verilator build in ``build_dir`` compiles (empty before Verilator
    has written its makefiles)."""
    build_dir = Path(build_dir)
    classes = build_dir / "Vtop_classes.mk"
    makefile = build_dir / "Vtop.mk"
    if not classes.exists() or not makefile.exists():
        return []
    text = classes.read_text()
    globals_ = _names(text, "VM_GLOBAL_FAST") + _names(text, "VM_GLOBAL_SLOW")
    user = _names(makefile.read_text(), "VM_USER_CLASSES")
    if re.search(r"^VM_PARALLEL_BUILDS = 1", text, re.M):
        model = [name for variable in ("VM_CLASSES_FAST", "VM_CLASSES_SLOW", "VM_SUPPORT_FAST",
                                       "VM_SUPPORT_SLOW") for name in _names(text, variable)]
    else:
        model = ["Vtop__ALL"]         # one file that includes the others
    return [f"{name}.o" for name in [*model, *globals_, *user]]


def verilator_status(build_dir, since):
    """The stage of the Verilator build in ``build_dir`` started at ``since`` (a
    :func:`time.time`): verilating, compiling k/n objects or linking."""
    build_dir = Path(build_dir)
    classes = build_dir / "Vtop_classes.mk"
    if not classes.exists() or classes.stat().st_mtime < since - 1:
        return "verilating"
    objects = verilator_objects(build_dir)
    if not objects:
        return "verilating"
    done = 0
    for name in objects:
        path = build_dir / name
        try:
            done += path.stat().st_mtime >= since - 1
        except OSError:
            pass
    if done >= len(objects):
        return "linking"
    return f"compiling {done}/{len(objects)} objects"


def _tail(path, size=1 << 16):
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        handle.seek(max(0, handle.tell() - size))
        return handle.read().decode(errors="replace")


def cocotb_status(log_path):
    """The cocotb test a run is in, from its log: ``running test k/n (name)``."""
    try:
        text = _tail(log_path)
    except OSError:
        return "starting the simulator"
    matches = re.findall(r"running (\S+) \((\d+)/(\d+)\)", text)
    if not matches:
        return "starting the simulator"
    name, number, total = matches[-1]
    return f"running test {number}/{total} ({name.rsplit('.', 1)[-1]})"


def yosys_status(log_path):
    """The pass a Yosys run is in, from its log (``-l``): its last ``N. Executing ...`` line."""
    try:
        text = _tail(log_path)
    except OSError:
        return "starting Yosys"
    matches = re.findall(r"^([\d.]+)\. Executing (.+?)\.?$", text, re.M)
    if not matches:
        return "starting Yosys"
    step, what = matches[-1]
    # "ABC pass (technology mapping using ABC)", "Verilog-2005 frontend: cells_sim.v"
    what = re.split(r"\s*[(:]", what)[0]
    return f"Yosys step {step}: {what}"
