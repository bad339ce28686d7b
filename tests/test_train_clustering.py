"""``python -m fracbnn_train.clustering``: compression ratio against accuracy for clustered
kernels (no PyTorch needed; run here on the bundled model with labelled images)."""

import json

import numpy as np
import pytest

from fracbnn_golden import FracBNN
from fracbnn_golden.kernels import fracbnn_conv_kernels, histogram, kernel_symbols
from fracbnn_train.clustering import clustered_model, main, tradeoff_rows


@pytest.fixture(scope="module")
def labelled(public_vectors):
    """Eight public images labelled with the bundled model's own classes."""
    pixels = public_vectors["pixels"][:8]
    return pixels, FracBNN.default().logits(pixels).argmax(1)


def test_clustered_model_keeps_at_most_k_patterns_per_layer(net):
    clustered = clustered_model(net, 16)
    for name, kernels in fracbnn_conv_kernels(clustered).items():
        assert np.count_nonzero(histogram(kernel_symbols(kernels))) <= 16, name
    # Everything but the conv weights is untouched.
    for key, value in net.params.items():
        if not key.endswith(".weight") or key.startswith("linear"):
            assert np.array_equal(clustered.params[key], value), key


def test_tradeoff_rows(net, labelled):
    pixels, labels = labelled
    rows = tradeoff_rows(net, pixels, labels, keeps=(64, 4))
    assert [row["keep"] for row in rows] == [None, 64, 4]
    assert rows[0]["accuracy"] == 1.0 and rows[0]["bits_flipped"] == 0
    # Fewer patterns: more bits flipped, a higher compression ratio.
    assert rows[0]["ratio"] < rows[1]["ratio"] < rows[2]["ratio"]
    assert 0 < rows[1]["bits_flipped"] < rows[2]["bits_flipped"]
    for row in rows[1:]:
        predicted = clustered_model(net, row["keep"]).logits(pixels).argmax(1)
        assert row["accuracy"] == np.mean(predicted == labels) == row["agreement"]


def test_command_writes_table_json_plot_and_model(tmp_path, labelled, capsys):
    pixels, _ = labelled
    data = tmp_path / "test.npz"
    np.savez(data, pixels=pixels, labels=np.arange(8))       # a data set has every class
    model = tmp_path / "model.npz"
    np.savez(model, **FracBNN.default().params)
    out = tmp_path / "report"
    assert main(["--model", str(model), "--data", str(data), "--test-data", str(data),
                 "--out", str(out), "--keeps", "32", "--write-keep", "32"]) == 0
    table = (out / "clustering.md").read_text()
    assert "| all (lossless) |" in table and "| 32 |" in table
    assert len(json.loads((out / "clustering.json").read_text())["rows"]) == 2
    assert (out / "clustering.png").read_bytes().startswith(b"\x89PNG")
    written = FracBNN.from_npz(out / "clustered_32.npz")
    assert np.array_equal(written.params["conv1.weight"],
                          clustered_model(FracBNN.default(), 32).params["conv1.weight"])
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--write-keep", "0"], "--write-keep 0: K must be 1..512"),
    (["--model", "{tmp}/missing.npz"], "missing.npz: no such file"),
])
def test_command_errors(tmp_path, capsys, args, message):
    args = [arg.format(tmp=tmp_path) for arg in args]
    if "--model" not in args:
        model = tmp_path / "model.npz"
        np.savez(model, **FracBNN.default().params)
        args += ["--model", str(model)]
    assert main(args + ["--data", "mnist", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "out").exists()
