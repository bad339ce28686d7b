"""Compression against accuracy: the lossy kernel clustering of the compression report
(:func:`fracbnn_golden.kernels.cluster_kernels`) applied to a trained model and scored on its
test set with the golden model (docs/training.md §6).

``python -m fracbnn_train.clustering --model M.npz --data mnist --out FOLDER`` writes
``clustering.md`` (the table), ``clustering.json`` and ``clustering.png`` (compression ratio
against test accuracy), and with ``--write-keep K`` the clustered model ``clustered_K.npz``
(for ``python -m sim.accelerator --model``). Needs no PyTorch.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from benchmarks.compression import CLUSTER_KEEPS, clustering_rows
from fracbnn_golden.files import check_output_dir
from fracbnn_golden.huffman import DEFAULT_BLOCK_CHANNELS, DEFAULT_MAX_LENGTH
from fracbnn_golden.kernels import cluster_kernels, fracbnn_conv_kernels
from fracbnn_golden.model import FracBNN, ModelFormatError

from .data import DataError, load_data, split

__all__ = ["DEFAULT_KEEPS", "clustered_model", "tradeoff_rows", "format_table", "plot", "main"]

# The compression report's strengths (but 512: lossless, the first row anyway), finer between
# 512 and 128, where a trained model's accuracy goes (docs/training.md §6).
DEFAULT_KEEPS = tuple(sorted((set(CLUSTER_KEEPS) | {448, 384, 320, 192, 4}) - {512},
                             reverse=True))


def clustered_model(net, keep):
    """``net`` with every binary conv's kernels clustered to its ``keep`` most frequent
    patterns (the compression report's rule); class names and other arrays kept."""
    params = dict(net.params)
    for name, kernels in fracbnn_conv_kernels(net).items():
        params[f"{name}.weight"] = cluster_kernels(kernels, keep)
    return FracBNN(params, source=f"clustered to {keep} patterns per layer")


def tradeoff_rows(net, pixels, labels, keeps=DEFAULT_KEEPS, max_length=DEFAULT_MAX_LENGTH,
                  block_channels=DEFAULT_BLOCK_CHANNELS):
    """One dict per clustering strength: the compression report's figures (``keep``,
    ``ratio``, ``compressed_bits``, ``bits_flipped``, ...) and ``accuracy`` (golden model, on
    ``pixels``/``labels``) and ``agreement`` (predicted classes equal to the unclustered
    model's). The first row is the unclustered model (``keep`` None)."""
    layers = fracbnn_conv_kernels(net)
    reference = net.logits(pixels).argmax(1)
    # 512 kept patterns = every pattern: the lossless figures.
    rows = clustering_rows(layers, (512,) + tuple(keeps), max_length, block_channels)
    rows[0] = rows[0] | {"keep": None, "accuracy": float(np.mean(reference == labels)),
                         "agreement": 1.0}
    for row in rows[1:]:
        predicted = clustered_model(net, row["keep"]).logits(pixels).argmax(1)
        row["accuracy"] = float(np.mean(predicted == labels))
        row["agreement"] = float(np.mean(predicted == reference))
    return rows


def format_table(rows, images):
    """The trade-off as a Markdown table."""
    lines = ["| kept patterns per layer | weight bits flipped | compressed bits | ratio | "
             f"test accuracy ({images} images) | same class as unclustered |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        keep = "all (lossless)" if row["keep"] is None else str(row["keep"])
        lines.append(f"| {keep} | {100 * row['flipped_fraction']:.2f} % | "
                     f"{row['compressed_bits']:,} | {row['ratio']:.3f}x | "
                     f"{100 * row['accuracy']:.1f} % | {100 * row['agreement']:.1f} % |")
    return "\n".join(lines)


def plot(rows, path, title):
    """Compression ratio (x) against test accuracy (y), each point labelled with its K."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ratios = [row["ratio"] for row in rows]
    accuracy = [100 * row["accuracy"] for row in rows]
    ax.plot(ratios, accuracy, "o-", color="tab:blue")
    crowded = min(ratios) * 1.05        # points this close to lossless would overlap: no label
    for row, x, y in zip(rows, ratios, accuracy):
        if row["keep"] is None or x > crowded:
            ax.annotate("lossless" if row["keep"] is None else f"K={row['keep']}", (x, y),
                        textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("weight compression ratio (raw 9 bits/kernel : Huffman stream)")
    ax.set_ylabel("golden-model test accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _keeps(text):
    try:
        keeps = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of integers") from None
    if not keeps or min(keeps) < 1 or max(keeps) > 512:
        raise argparse.ArgumentTypeError(f"{text!r}: each K must be 1..512")
    return tuple(sorted(set(keeps), reverse=True))


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m fracbnn_train.clustering",
        description="Compression ratio against test accuracy for a trained model whose "
                    "kernels are clustered to K patterns per layer (golden model).")
    parser.add_argument("--model", type=Path, required=True, help="model file (.npz)")
    parser.add_argument("--data", required=True,
                        help="the data set the model was trained on (mnist, folder or .npz); "
                             "its test split (the last fifth of every class) is used")
    parser.add_argument("--test-data", help="a separate test set instead of the split")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--keeps", type=_keeps, default=DEFAULT_KEEPS,
                        help="patterns kept per layer, comma-separated (default "
                             + ",".join(map(str, DEFAULT_KEEPS)) + ")")
    parser.add_argument("--write-keep", type=int, metavar="K",
                        help="also write the model clustered to K patterns (clustered_K.npz)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.write_keep is not None and not 1 <= args.write_keep <= 512:
            raise ValueError(f"--write-keep {args.write_keep}: K must be 1..512")
        out = check_output_dir(args.out, "--out", files=("clustering.md", "clustering.json",
                                                         "clustering.png"))
        net = FracBNN.from_npz(args.model)
        test = load_data(args.test_data) if args.test_data else split(load_data(args.data))[1]
    except (ModelFormatError, DataError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    rows = tradeoff_rows(net, test.pixels, test.labels, args.keeps)
    out.mkdir(parents=True, exist_ok=True)
    table = format_table(rows, len(test))
    (out / "clustering.md").write_text(table + "\n")
    (out / "clustering.json").write_text(json.dumps(
        {"model": str(args.model), "test": test.source, "rows": rows}, indent=2) + "\n")
    plot(rows, out / "clustering.png", f"{args.model.name}: kernel clustering, "
                                       f"{len(test)} test images")
    print(table)
    print(f"wrote {out / 'clustering.md'}, clustering.json, clustering.png")
    if args.write_keep is not None:
        path = out / f"clustered_{args.write_keep}.npz"
        np.savez_compressed(path, **clustered_model(net, args.write_keep).params)
        FracBNN.from_npz(path)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
