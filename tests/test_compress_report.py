"""Lossy kernel clustering, the compression figures and ``python -m benchmarks.compression``."""

import contextlib
import io
import json

import numpy as np
import pytest

from benchmarks.compression import (
    MODELS,
    clustering_rows,
    compression_summary,
    format_report,
    main,
    stored_stream_figures,
)
from fracbnn_golden import FracBNN
from fracbnn_golden.kernels import (
    bnn_pynq_cnv_kernels,
    cluster_kernels,
    cluster_map,
    fracbnn_conv_kernels,
    histogram,
    kernel_symbols,
    symbols_to_kernels,
)


@pytest.fixture(scope="module")
def report_text():
    """stdout of one ``python -m benchmarks.compression --json`` run (the slowest part of this
    file; capsys is function-scoped, so stdout is redirected by hand)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--json"]) == 0
    return out.getvalue()


def test_clustering_keeps_the_most_frequent_and_maps_to_the_nearest():
    rng = np.random.default_rng(3)
    symbols = rng.choice(512, size=4000, p=np.r_[np.full(16, 0.05), np.full(496, 0.2 / 496)])
    freqs = histogram(symbols)
    mapping = cluster_map(freqs, 16)
    ranked = np.lexsort((np.arange(512), -freqs))[:16]
    assert set(mapping[np.flatnonzero(freqs)]) <= set(ranked)
    assert (mapping[ranked] == ranked).all()
    distance = np.bitwise_count(np.arange(512)[:, None] ^ ranked[None, :])
    assert (np.bitwise_count(np.arange(512) ^ mapping) == distance.min(axis=1)).all()
    # Tie rule: among equally near kept patterns the most frequent (then smaller) one.
    first_nearest = ranked[np.argmax(distance == distance.min(axis=1, keepdims=True), axis=1)]
    assert (mapping == first_nearest).all()


@pytest.mark.parametrize("keep", [1, 8, 64, 200])
def test_clustering_reduces_patterns_and_counts_flips(keep):
    kernels = bnn_pynq_cnv_kernels()["conv2"]
    clustered = cluster_kernels(kernels, keep)
    assert clustered.dtype == np.uint8 and clustered.shape == kernels.shape
    assert np.count_nonzero(histogram(kernel_symbols(clustered))) == keep
    rows = clustering_rows({"conv2": kernels}, keeps=[keep])
    assert rows[0]["bits_flipped"] == np.count_nonzero(clustered != kernels)
    assert rows[0]["flipped_fraction"] == rows[0]["bits_flipped"] / kernels.size
    assert rows[0]["max_distinct"] == keep


def test_clustering_with_all_patterns_is_lossless():
    for kernels in bnn_pynq_cnv_kernels().values():
        assert (cluster_kernels(kernels, 512) == kernels).all()
    few = symbols_to_kernels(np.array([[5, 5, 9]]))
    assert (cluster_kernels(few, 2) == few).all()


def test_clustering_trade_off_on_the_public_images(net, public_vectors):
    layers = fracbnn_conv_kernels(net)
    pixels = public_vectors["pixels"]
    rows = clustering_rows(layers, keeps=[512, 128, 32], net=net,
                           image_sets={"public": pixels})
    lossless, mid, coarse = rows
    assert lossless["bits_flipped"] == 0 and lossless["class_changes"] == {"public": 0}
    assert lossless["max_logit_change"] == 0
    assert 0 < mid["flipped_fraction"] < coarse["flipped_fraction"] < 0.5
    assert lossless["compressed_bits"] > mid["compressed_bits"] > coarse["compressed_bits"]
    assert 0 <= mid["class_changes"]["public"] <= coarse["class_changes"]["public"] <= 24
    assert coarse["max_logit_change"] > 0
    # Recompute the coarse row's class changes independently.
    params = dict(net.params)
    params.update({f"{name}.weight": cluster_kernels(k, 32) for name, k in layers.items()})
    changed = FracBNN(params).logits(pixels).argmax(1) != net.logits(pixels).argmax(1)
    assert coarse["class_changes"]["public"] == int(changed.sum())


def test_compression_summary_is_consistent():
    summary = compression_summary()
    assert set(summary) == set(MODELS)
    for figures in summary.values():
        assert figures["raw_bits"] == 9 * figures["kernels"]
        assert figures["overhead_bits"] == figures["table_bits"] + figures["offset_bits"]
        assert figures["ratio"] == pytest.approx(
            figures["raw_bits"] / (figures["payload_bits"] + figures["overhead_bits"]))
        # Huffman: within [H, H + 1) bits per kernel of its tables' pooled entropy; below the
        # per-layer entropy only by what sharing tables costs.
        group = figures["group_entropy_bits"]
        assert group <= figures["payload_bits"] < group + figures["kernels"]
        assert figures["entropy_bits"] <= group
        assert figures["overhead_bits"] < 0.02 * figures["raw_bits"]
    assert summary["fracbnn_cifar10"]["kernels"] == 31232
    assert summary["bnn_pynq_cnv_w1a1"]["kernels"] == 127168


@pytest.mark.parametrize("symbols_per_cycle", [1, 4])
def test_stored_stream_costs_an_offset_per_lane_and_nothing_in_payload(symbols_per_cycle):
    """The weight cache's stream: the binary convs (not the stem), each layer one block in
    ``2 N`` lanes; Huffman codes are per symbol, so the payload equals the same layers coded
    in one lane, and the offsets are one 32-bit word per lane and layer."""
    from fracbnn_golden.huffman import compress_model
    from rtl.schedule import AcceleratorConfig, plan_layers

    config = AcceleratorConfig(decoder_symbols_per_cycle=symbols_per_cycle)
    plans = plan_layers(config)
    stored = stored_stream_figures(config=config)
    net = FracBNN.default()
    layers = {plan.name: net.params[f"{plan.name}.weight"] for plan in plans}
    plain = compress_model(layers, block_channels=max(plan.cout for plan in plans))
    assert stored["lanes"] == 2 * symbols_per_cycle
    assert stored["kernels"] == sum(plan.cin * plan.cout for plan in plans)
    assert stored["payload_bits"] == plain.size_bits()["payload"]
    assert stored["offset_bits"] == 32 * len(plans) * stored["lanes"]


def test_cli_json(report_text):
    report = json.loads(report_text)
    assert set(report) == {"settings", "models"}
    assert set(report["models"]) == set(MODELS)
    fracbnn = report["models"]["fracbnn_cifar10"]
    assert len(fracbnn["layers"]) == 19
    assert {"layer", "kernels", "distinct", "entropy", "length", "ratio", "table",
            "own_table_bits", "own_saving_bits"} <= set(fracbnn["layers"][0])
    assert {"payload_bits", "entropy_bits", "overhead_bits", "ratio"} <= set(fracbnn["total"])
    assert [row["strategy"] for row in fracbnn["strategies"]] == ["per-layer", "shared", "auto"]
    auto = fracbnn["strategies"][2]
    assert auto["payload_bits"] + auto["overhead_bits"] <= min(
        row["payload_bits"] + row["overhead_bits"] for row in fracbnn["strategies"])
    rows = fracbnn["clustering"]
    assert rows[0]["keep"] == 512 and rows[0]["bits_flipped"] == 0
    assert set(rows[0]["class_changes"]) == {"photos", "random"}
    assert "class_changes" not in report["models"]["bnn_pynq_cnv_w1a1"]["clustering"][0]
    text = format_report(report)
    for needle in ("== fracbnn_cifar10 ==", "== bnn_pynq_cnv_w1a1 ==", "layer3_2.conv2",
                   "lossy clustering", "per-layer"):
        assert needle in text


def test_cli_rejects_impossible_code_length(capsys):
    assert main(["--max-length", "5"]) == 2
    assert "do not fit" in capsys.readouterr().err
