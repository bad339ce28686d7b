"""The sweep's configuration file: the grid it gives and the errors it reports."""

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import sweep
from benchmarks.sweep_config import (
    ARRAY_WIDTHS,
    DEFAULT_GRID,
    SweepConfigError,
    load_sweep_config,
)
from rtl.schedule import AcceleratorConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
FULL_GRID = REPO_ROOT / "benchmarks" / "full_grid.toml"


def write(tmp_path, text, name="grid.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_an_empty_file_is_the_default_grid(tmp_path):
    grid = load_sweep_config(write(tmp_path, ""))
    assert grid == DEFAULT_GRID
    assert load_sweep_config(write(tmp_path, "[sweep]\n")) == DEFAULT_GRID


def test_the_full_grid_file_is_every_configuration_the_accelerator_accepts():
    configs = load_sweep_config(FULL_GRID).configs()
    accepted = []
    for pe in range(1, 17):
        for simd in range(1, 17):
            for symbols in (1, 2, 4, 8):
                for pixels in (1, 2, 3):
                    try:
                        accepted.append(AcceleratorConfig(pe, simd, symbols, pixels))
                    except ValueError:
                        pass
    assert sorted(configs, key=repr) == sorted(accepted, key=repr)


def test_the_default_grid_is_the_full_grid_from_width_4():
    full = load_sweep_config(FULL_GRID).configs()
    expected = [config for config in full if min(config.pe, config.simd_channels) >= 4]
    assert DEFAULT_GRID.configs() == expected
    assert AcceleratorConfig() in expected


def test_values_lists_and_single_integers(tmp_path):
    grid = load_sweep_config(write(tmp_path, """
        [sweep]
        pe = [8, 4, 8]
        simd_channels = [4, 2]
        decoder_symbols_per_cycle = [1, 4]
        pixels_per_beat = 1
        clock_mhz = 300.5
    """))
    assert grid.pe == (4, 8)                    # sorted, duplicates dropped
    assert grid.simd_channels == (2, 4)
    assert grid.clock_mhz == 300.5
    # Decoder 4 does not divide simd_channels 2: those points are left out.
    assert [(c.pe, c.simd_channels, c.decoder_symbols_per_cycle) for c in grid.configs()] == [
        (4, 2, 1), (4, 4, 1), (4, 4, 4), (8, 2, 1), (8, 4, 1), (8, 4, 4)]
    assert load_sweep_config(write(tmp_path, "[sweep]\npe = 2\n")).pe == (2,)


@pytest.mark.parametrize("text, words", [
    ("[sweep]\npe = [3]\n", ["sweep.pe", "3", "divide"]),
    ("[sweep]\nsimd_channels = [32]\n", ["sweep.simd_channels", "32", "allowed: 1, 2, 4, 8, 16"]),
    ("[sweep]\npe = 0\n", ["sweep.pe", "positive"]),
    ("[sweep]\npe = -4\n", ["sweep.pe", "positive"]),
    ("[sweep]\npe = []\n", ["sweep.pe", "empty"]),
    ('[sweep]\npe = "16"\n', ["sweep.pe", "'16'", "str", "integer"]),
    ("[sweep]\npe = [16, 8.0]\n", ["sweep.pe", "8.0", "float"]),
    ("[sweep]\npe = true\n", ["sweep.pe", "True", "bool"]),
    ("[sweep]\npe = [[16]]\n", ["sweep.pe", "list"]),
    ("[sweep]\ndecoder_symbols_per_cycle = [3]\n",
     ["sweep.decoder_symbols_per_cycle", "3", "divides none"]),
    ("[sweep]\nsimd_channels = [1, 2]\ndecoder_symbols_per_cycle = [4]\n",
     ["sweep.decoder_symbols_per_cycle", "4", "[1, 2]"]),
    ("[sweep]\npixels_per_beat = [1, 4]\n", ["sweep.pixels_per_beat", "4", "allowed: 1, 2"]),
    ("[sweep]\nclock_mhz = 0\n", ["sweep.clock_mhz", "positive"]),
    ('[sweep]\nclock_mhz = "fast"\n', ["sweep.clock_mhz", "'fast'"]),
    ("[sweep]\npes = [1]\n", ["sweep.pes", "unknown", "simd_channels"]),
    ("[accelerator]\npe = 16\n", ["'accelerator'", "unknown", "[sweep]"]),
    ("pe = 16\n", ["'pe'", "unknown"]),
    ("sweep = 3\n", ["'sweep'", "table"]),
    ("[sweep\npe = 1\n", ["not valid TOML"]),
    ("[sweep]\npe = [1, 2\n", ["not valid TOML"]),
])
def test_errors_name_the_file_and_the_key(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(SweepConfigError) as error:
        load_sweep_config(path)
    message = str(error.value)
    assert str(path) in message
    for word in words:
        assert word in message, (word, message)


def test_a_missing_file(tmp_path):
    with pytest.raises(SweepConfigError, match="no such file"):
        load_sweep_config(tmp_path / "absent.toml")


def test_a_binary_file(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_bytes(b"\xff\xfe[sweep]")
    with pytest.raises(SweepConfigError, match="UTF-8"):
        load_sweep_config(path)


def test_allowed_widths_are_exactly_what_the_accelerator_accepts():
    for width in range(1, 65):
        try:
            AcceleratorConfig(pe=width, simd_channels=width, decoder_symbols_per_cycle=1)
            accepted = True
        except ValueError:
            accepted = False
        assert accepted == (width in ARRAY_WIDTHS), width


def test_sweep_cli_reports_a_bad_file_with_status_2(tmp_path, capsys):
    path = write(tmp_path, "[sweep]\npe = [5]\n")
    assert sweep.main(["--config", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(path) in err and "sweep.pe" in err
    assert not (tmp_path / "out").exists()          # nothing ran


@pytest.mark.parametrize("module", ["benchmarks.sweep", "benchmarks"])
def test_command_lines_exit_2_without_a_traceback(tmp_path, module):
    path = write(tmp_path, "[sweep\n")
    result = subprocess.run([sys.executable, "-m", module, "--config", str(path),
                             "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "not valid TOML" in result.stderr and str(path) in result.stderr
    assert not (tmp_path / "out").exists()


def test_bench_rejects_an_impossible_validation_point(tmp_path, capsys):
    from benchmarks.__main__ import main
    assert main(["--validate", "16,16,3", "--out", str(tmp_path)]) == 2
    assert "decoder_symbols_per_cycle=3" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--validate", "16,16", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "--validate" in error and "'16,16' is not PE,SIMD,N[,P]" in error
    assert not any(tmp_path.iterdir())
