"""Every command checks its arguments before it starts anything long (a build, an elaboration,
a sweep): bad input is a one-line error naming the option, exit status 2, nothing written."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _one_line_error(err, *words):
    lines = [line for line in err.splitlines() if line.startswith("error") or ": error:" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], (word, err)


def _nothing_built(*args, **kwargs):
    pytest.fail("a build or simulation started")


# ---- python -m sim.accelerator ------------------------------------------------------------------

@pytest.fixture
def accelerator(monkeypatch):
    from sim import accelerator

    monkeypatch.setattr(accelerator, "run_accelerator", _nothing_built)
    monkeypatch.delenv("SIM", raising=False)
    return accelerator


@pytest.fixture
def pixels_file(tmp_path):
    path = tmp_path / "in.npy"
    np.save(path, np.zeros((1, 3, 32, 32), np.uint8))
    return path


def test_accelerator_refuses_an_empty_batch(tmp_path, accelerator, capsys):
    path = tmp_path / "empty.npy"
    np.save(path, np.zeros((0, 3, 32, 32), np.uint8))
    assert accelerator.main(["--pixels", str(path), "--out", str(tmp_path / "o.npz")]) == 2
    _one_line_error(capsys.readouterr().err, str(path), "empty batch")


@pytest.mark.parametrize("out, words", [
    ("missing/out.npz", ["--out", "does not exist"]),
    ("out", ["--out", "must end in .npz"]),
    (".", ["--out", "is a folder"]),
])
def test_accelerator_checks_out_before_building(tmp_path, accelerator, pixels_file, capsys,
                                                monkeypatch, out, words):
    monkeypatch.chdir(tmp_path)
    assert accelerator.main(["--pixels", str(pixels_file), "--out", out]) == 2
    _one_line_error(capsys.readouterr().err, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npy"]


def test_accelerator_checks_a_read_only_out(accelerator, pixels_file, read_only_folder, capsys):
    assert accelerator.main(["--photos", "--out", str(read_only_folder / "o.npz")]) == 2
    _one_line_error(capsys.readouterr().err, "--out", "cannot write in")


@pytest.mark.parametrize("argv, env", [(["--sim", "nosuchsim"], None), ([], "bogus")])
def test_accelerator_refuses_an_unknown_simulator(accelerator, pixels_file, capsys, monkeypatch,
                                                  argv, env):
    if env:
        monkeypatch.setenv("SIM", env)
    with pytest.raises(SystemExit) as exit_:
        accelerator.main(["--pixels", str(pixels_file), "--out", "o.npz", *argv])
    assert exit_.value.code == 2
    _one_line_error(capsys.readouterr().err, "--sim / $SIM", "unknown simulator",
                    env or "nosuchsim")


def test_accelerator_reads_npz_pixels_and_reports_bad_ones(tmp_path, accelerator, capsys):
    path = tmp_path / "in.npz"
    np.savez(path, images=np.zeros((1, 3, 32, 32), np.uint8))
    assert accelerator.main(["--pixels", str(path), "--out", str(tmp_path / "o.npz")]) == 2
    _one_line_error(capsys.readouterr().err, str(path), "no 'pixels' array")


# ---- python -m sim ------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, words", [
    (["--only", "NOSUCH", "units_head_l16"], ["--only", "NOSUCH"]),
    (["--sim", "bogus"], ["--sim / $SIM", "bogus"]),
])
def test_regression_refuses_unknown_names(capsys, monkeypatch, argv, words):
    from sim import __main__ as regression_cli
    from sim.regression import SimCase

    monkeypatch.setattr(SimCase, "run", _nothing_built)
    with pytest.raises(SystemExit) as exit_:
        regression_cli.main(argv)
    assert exit_.value.code == 2
    _one_line_error(capsys.readouterr().err, *words)


# ---- python -m boards.ultra96 -------------------------------------------------------------------

@pytest.fixture
def board(monkeypatch):
    from boards.ultra96 import __main__ as board_cli
    from boards.ultra96 import build

    monkeypatch.setattr(build, "_default_core", _nothing_built)
    monkeypatch.setattr(build, "Ultra96Top", _nothing_built)
    return board_cli


@pytest.mark.parametrize("out, words", [
    ("file", ["--out", "is a file"]),
    ("file/sub", ["--out", "the folder cannot be created"]),
])
def test_build_checks_out_before_elaborating(tmp_path, board, capsys, out, words):
    (tmp_path / "file").write_text("")
    out = tmp_path / out
    started = time.monotonic()
    assert board.main(["build", "--out", str(out), "--no-estimate", "--no-vivado"]) == 2
    _one_line_error(capsys.readouterr().err, *words)
    assert time.monotonic() - started < 10


def test_build_checks_a_read_only_out(board, read_only_folder, capsys):
    assert board.main(["build", "--out", str(read_only_folder / "b"), "--no-vivado"]) == 2
    _one_line_error(capsys.readouterr().err, "--out", "cannot write in")


def test_build_names_the_exact_clock(tmp_path, board, capsys):
    assert board.main(["build", "--out", str(tmp_path), "--clock-mhz", "400.0001"]) == 2
    _one_line_error(capsys.readouterr().err, "--clock-mhz 400.0001 is outside 10..400 MHz")


def test_build_checks_the_vivado_settings_before_elaborating(tmp_path, board, capsys,
                                                           monkeypatch):
    monkeypatch.setenv("AMARANTH_ENV_VIVADO", str(tmp_path / "settings64.sh"))
    assert board.main(["build", "--out", str(tmp_path / "b"), "--no-estimate"]) == 2
    _one_line_error(capsys.readouterr().err, "$AMARANTH_ENV_VIVADO", "settings64.sh: no such")
    assert not (tmp_path / "b").exists()


def test_regmap_write_to_an_unwritable_place(board, read_only_folder, capsys, monkeypatch):
    monkeypatch.setattr(board, "REGMAP_PATH", read_only_folder / "REGISTERS.md")
    assert board.main(["regmap", "--write"]) == 2
    _one_line_error(capsys.readouterr().err, "cannot write", "REGISTERS.md")


@pytest.mark.parametrize("argv, words", [
    (["--base", "-4096"], ["--base", "negative"]),
    (["--base", str(2**64)], ["--base", "beyond the 40-bit physical address space"]),
    (["--base", "lots"], ["--base", "not an address"]),
    (["--timeout", "nan"], ["--timeout", "not a number above 0"]),
    (["--timeout", "-1"], ["--timeout", "not a number above 0"]),
    (["--clock-mhz", "0"], ["--clock-mhz", "not a number above 0"]),
    (["--clock-mhz", "inf"], ["--clock-mhz", "not a number above 0"]),
])
def test_run_options_are_checked(board, capsys, argv, words):
    with pytest.raises(SystemExit) as exit_:
        board.main(["run", *argv, "photo.png"])
    assert exit_.value.code == 2
    _one_line_error(capsys.readouterr().err, *words)


def test_run_reports_a_devmem_folder_and_paths_once(tmp_path, board, capsys):
    from fracbnn_golden.images import bundled_photos

    photo = str(bundled_photos()[0])
    assert board.main(["run", "--bus", "devmem", "--devmem", str(tmp_path), photo]) == 2
    _one_line_error(capsys.readouterr().err, f"cannot open {tmp_path}: it is a folder")
    missing = tmp_path / "missing.png"
    assert board.main(["run", "--bus", "devmem", "--devmem", str(tmp_path), str(missing)]) == 2
    err = capsys.readouterr().err
    _one_line_error(err, "missing.png: no such file")
    assert err.count(str(missing)) == 1
    bitstream = tmp_path / "absent.bit"
    assert board.main(["run", "--bitstream", str(bitstream), photo]) == 2
    _one_line_error(capsys.readouterr().err, f"--bitstream {bitstream}: no such file")


def test_driver_checks_its_window_and_timeout():
    from boards.ultra96.driver import DevMemBus, Driver, DriverError, PynqBus

    for base in (-4096, 2**40, 2**64, 0.5):
        for bus in (DevMemBus, PynqBus):
            with pytest.raises(DriverError, match="base address"):
                bus(base)
    for timeout in (float("nan"), float("inf"), 0, -1, "1"):
        with pytest.raises(ValueError, match="timeout must be a finite positive"):
            Driver(None, timeout=timeout, check_id=False)


# ---- the sweep and the bench --------------------------------------------------------------------

def _config(tmp_path, text, name="grid.toml"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.mark.parametrize("value", ["inf", "+inf", "nan", "1e308", "10001"])
def test_absurd_clocks_are_refused(tmp_path, value):
    from benchmarks.sweep_config import SweepConfigError, load_sweep_config

    path = _config(tmp_path, f"[sweep]\nclock_mhz = {value}\n")
    with pytest.raises(SweepConfigError, match=r"grid.toml: sweep.clock_mhz: .* up to 10000"):
        load_sweep_config(path)


def test_a_byte_order_mark_is_accepted(tmp_path):
    from benchmarks.sweep_config import load_sweep_config

    path = _config(tmp_path, b"\xef\xbb\xbf[sweep]\npe = [8]\nclock_mhz = 200\n")
    grid = load_sweep_config(path)
    assert grid.pe == (8,) and grid.clock_mhz == 200
    result = json.dumps(grid.as_dict(), allow_nan=False)        # finite: valid JSON
    assert '"clock_mhz": 200' in result


def test_sweep_checks_out_before_the_work(tmp_path, read_only_folder, capsys, monkeypatch):
    from benchmarks import sweep

    monkeypatch.setattr(sweep, "run_sweep", _nothing_built)
    (tmp_path / "file").write_text("")
    for out, words in ((tmp_path / "file", ["--out", "is a file"]),
                       (read_only_folder / "sweep", ["--out", "cannot write in"])):
        assert sweep.main(["--skip-synth", "--out", str(out)]) == 2
        _one_line_error(capsys.readouterr().err, *words)
    (tmp_path / "out" / "sweep.json").mkdir(parents=True)
    assert sweep.main(["--skip-synth", "--out", str(tmp_path / "out")]) == 2
    _one_line_error(capsys.readouterr().err, "sweep.json is a folder")


def test_sweep_refuses_a_nonsense_lut(tmp_path, capsys, monkeypatch):
    from benchmarks import sweep

    monkeypatch.setattr(sweep, "run_sweep", _nothing_built)
    figures = tmp_path / "benchmarks.json"
    figures.write_text(json.dumps({"lut": -5}))
    assert sweep.main(["--benchmarks", str(figures), "--out", str(tmp_path / "o")]) == 2
    _one_line_error(capsys.readouterr().err, str(figures), "no whole-accelerator `lut`")


def test_bench_checks_out_before_the_work(tmp_path, read_only_folder, capsys, monkeypatch):
    from benchmarks import __main__ as bench

    for name in ("accelerator_figures", "synthesis_figures", "sweep_figures", "huffman_figures",
                 "golden_figures"):
        monkeypatch.setattr(bench, name, _nothing_built)
    (tmp_path / "file").write_text("")
    (tmp_path / "docs").write_text("")              # where the plots go
    for out, words in ((tmp_path / "file", ["--out", "is a file"]),
                       (read_only_folder / "bench", ["--out", "cannot write in"]),
                       (tmp_path, ["--out", "docs", "is a file"])):
        assert bench.main(["--skip-sim", "--skip-synth", "--out", str(out)]) == 2
        _one_line_error(capsys.readouterr().err, *words)


# ---- python -m formal ---------------------------------------------------------------------------

def test_formal_checks_out_before_the_proofs(tmp_path, capsys, monkeypatch):
    from formal import __main__ as formal_cli

    if formal_cli.tools_missing():
        pytest.skip(formal_cli.tools_missing())
    monkeypatch.setattr(formal_cli, "run_task", _nothing_built)
    (tmp_path / "file").write_text("")
    assert formal_cli.main(["--out", str(tmp_path / "file")]) == 2
    _one_line_error(capsys.readouterr().err, "--out", "is a file")


# ---- no traceback from the real command lines ---------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["sim.accelerator", "--pixels", "{tmp}/in.npy", "--out", "{tmp}/missing/o.npz"],
    ["sim", "--only", "NOSUCH"],
    ["fracbnn_golden", "logits", "--pixels", "{tmp}/in.npy", "--out", "{tmp}"],
    ["boards.ultra96", "build", "--out", "{tmp}/in.npy"],
])
def test_command_lines_exit_2_without_a_traceback(tmp_path, argv):
    np.save(tmp_path / "in.npy", np.zeros((1, 3, 32, 32), np.uint8))
    env = {key: value for key, value in os.environ.items() if key != "SIM"}
    result = subprocess.run([sys.executable, "-m", *(a.format(tmp=tmp_path) for a in argv)],
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=300, env=env)
    assert result.returncode == 2, result.stderr
    _one_line_error(result.stderr)
    assert result.stdout == ""
