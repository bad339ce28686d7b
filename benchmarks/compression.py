"""How well Huffman coding compresses real binary kernels (``python -m benchmarks.compression``):
the bundled FracBNN CIFAR-10 model and the BNN-PYNQ CNV-W1A1 kernels.

Figures, all measured on the real kernels:

- per layer: kernels, distinct patterns, order-0 entropy H, average code length of the layer's
  own optimal code and of the code actually used (the table chosen by ``tables``), 9 / length,
  what an own table would cost and save compared with one whole-model table;
- per model: payload, tables and block offsets (the overhead), the serialised size, for the
  table strategies per-layer / shared / auto;
- the lossy clustering trade-off: for K kept patterns per layer, the fraction of weight bits
  flipped, the compressed size and (FracBNN) how many images change class and the largest
  logit change.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from fracbnn_golden.huffman import (
    DEFAULT_BLOCK_CHANNELS,
    DEFAULT_MAX_LENGTH,
    MAX_CODE_LENGTH,
    CanonicalCode,
    compress_model,
)
from fracbnn_golden.images import bundled_photos, load_image
from fracbnn_golden.kernels import (
    KERNEL_BITS,
    bnn_pynq_cnv_kernels,
    cluster_kernels,
    entropy_bits,
    fracbnn_conv_kernels,
    histogram,
    kernel_symbols,
)
from fracbnn_golden.model import FracBNN, ModelFormatError

__all__ = ["MODELS", "CLUSTER_KEEPS", "model_kernels", "compression_summary",
           "stored_stream_figures", "layer_rows",
           "strategy_rows", "clustering_rows", "build_report", "format_report", "main"]

MODELS = ("fracbnn_cifar10", "bnn_pynq_cnv_w1a1")
CLUSTER_KEEPS = (512, 256, 128, 64, 32, 16)
STRATEGIES = ("per-layer", "shared", "auto")
RANDOM_IMAGES = 10


def model_kernels(model, net=None):
    """``{layer: uint8 kernels}`` of one of :data:`MODELS` (``net``: a FracBNN to use instead
    of the bundled one)."""
    if model == "fracbnn_cifar10":
        return fracbnn_conv_kernels(net if net is not None else FracBNN.default())
    if model == "bnn_pynq_cnv_w1a1":
        return bnn_pynq_cnv_kernels()
    raise ValueError(f"unknown model {model!r}, expected one of {', '.join(MODELS)}")


def _kernel_count(kernels):
    return int(np.prod(kernels.shape[:-2]))


def _totals(layers, compressed):
    """Whole-model figures of a compressed model, in bits unless named otherwise."""
    hists = [histogram(kernel_symbols(kernels)) for kernels in layers.values()]
    kernels = sum(int(h.sum()) for h in hists)
    raw = KERNEL_BITS * kernels
    group_entropy = 0.0
    for table in range(len(compressed.tables)):
        pooled = sum(h for h, layer in zip(hists, compressed.layers) if layer.table == table)
        group_entropy += entropy_bits(pooled) * int(pooled.sum())
    size = compressed.size_bits()
    overhead = size["tables"] + size["offsets"]
    return {
        "kernels": kernels,
        "distinct": int(np.count_nonzero(sum(hists))),
        "raw_bits": raw,
        "entropy_bits": sum(entropy_bits(h) * int(h.sum()) for h in hists),
        "group_entropy_bits": group_entropy,
        "payload_bits": size["payload"],
        "table_bits": size["tables"],
        "offset_bits": size["offsets"],
        "overhead_bits": overhead,
        "overhead_fraction": overhead / raw,
        "metadata_bits": size["metadata"] + size["padding"],
        "blob_bits": size["total"],
        "tables": len(compressed.tables),
        "payload_ratio": raw / size["payload"],
        "ratio": raw / (size["payload"] + overhead),
        # None when the entropy is 0 (a single pattern): a code still spends 1 bit per kernel.
        "payload_excess": size["payload"] / group_entropy - 1 if group_entropy else None,
    }


def compression_summary(max_length=DEFAULT_MAX_LENGTH, block_channels=DEFAULT_BLOCK_CHANNELS,
                        tables="auto"):
    """``{model: figures}`` for both bundled models (for the benchmarks).

    Figures: ``kernels``, ``raw_bits`` (9 per kernel), ``payload_bits``, ``entropy_bits`` (sum
    over kernels of the per-layer order-0 entropy), ``group_entropy_bits`` (the same with each
    table's pooled histogram: the bound for the codes actually used), ``table_bits``,
    ``offset_bits``, ``overhead_bits`` (tables + offsets), ``ratio`` (raw / (payload +
    overhead)), ``payload_ratio`` (raw / payload), and a few more (see ``_totals``).
    """
    result = {}
    for model in MODELS:
        layers = model_kernels(model)
        result[model] = _totals(layers, compress_model(layers, max_length, block_channels, tables))
    return result


def stored_stream_figures(net=None, config=None):
    """The figures of :func:`compression_summary` for the FracBNN stream as the accelerator
    stores it (:func:`rtl.tables.compressed_weights`: each layer one block, split into the
    decoder's lanes, each lane with its own offset), for ``net`` (default the bundled model)
    and an :class:`rtl.schedule.AcceleratorConfig` (default the default one). Its payload is the
    same as the plain stream's; the offsets are not."""
    from rtl.schedule import AcceleratorConfig
    from rtl.tables import compressed_weights, pg_conv_kernels

    net = net if net is not None else FracBNN.default()
    config = config if config is not None else AcceleratorConfig()
    compressed = compressed_weights(net, config)
    figures = _totals(pg_conv_kernels(net, config), compressed)
    figures["lanes"] = compressed.layers[0].lanes
    return figures


def layer_rows(layers, compressed, max_length=DEFAULT_MAX_LENGTH):
    """One dict per layer. ``own_saving_bits``: bits an own table would save compared with one
    table for the whole model (payload saved minus the own table's size; negative: the own
    table does not pay)."""
    hists = [histogram(kernel_symbols(kernels)) for kernels in layers.values()]
    whole = CanonicalCode.from_frequencies(sum(hists), max_length)
    rows = []
    for (name, kernels), hist, layer in zip(layers.items(), hists, compressed.layers):
        own = CanonicalCode.from_frequencies(hist, max_length)
        own_table_bits = compress_model({name: kernels}, max_length).size_bits()["tables"]
        count = int(hist.sum())
        used = compressed.tables[layer.table]
        rows.append({
            "layer": name,
            "shape": list(kernels.shape),
            "kernels": count,
            "distinct": int(np.count_nonzero(hist)),
            "entropy": entropy_bits(hist),
            "own_length": own.cost(hist) / count if count else 0.0,
            "length": used.cost(hist) / count if count else 0.0,
            "table": layer.table,
            "ratio": KERNEL_BITS * count / used.cost(hist) if count else 1.0,
            "own_table_bits": own_table_bits,
            "own_saving_bits": whole.cost(hist) - own.cost(hist) - own_table_bits,
            "blocks": layer.n_blocks,
        })
    return rows


def strategy_rows(layers, max_length=DEFAULT_MAX_LENGTH, block_channels=DEFAULT_BLOCK_CHANNELS):
    """Whole-model figures for each table strategy (one table per layer, one shared, auto)."""
    return [{"strategy": strategy,
             **_totals(layers, compress_model(layers, max_length, block_channels, strategy))}
            for strategy in STRATEGIES]


def clustering_rows(layers, keeps=CLUSTER_KEEPS, max_length=DEFAULT_MAX_LENGTH,
                    block_channels=DEFAULT_BLOCK_CHANNELS, net=None, image_sets=None):
    """The lossy clustering trade-off: one dict per K (patterns kept per layer).

    With ``net`` (a FracBNN whose conv kernels ``layers`` are) and ``image_sets`` (``{name:
    uint8 pixels [N, 3, 32, 32]}``) each row also gives, per set, how many images change class
    and the largest logit change (in logit units, code / 128) over all sets.
    """
    raw = KERNEL_BITS * sum(_kernel_count(kernels) for kernels in layers.values())
    if net is not None:
        pixels = np.concatenate(list(image_sets.values()))
        reference = net.logits(pixels).astype(np.int64)
        set_of_image = np.repeat(np.arange(len(image_sets)), [len(p) for p in image_sets.values()])
    rows = []
    for keep in keeps:
        clustered = {name: cluster_kernels(kernels, keep) for name, kernels in layers.items()}
        flipped = sum(int(np.count_nonzero(clustered[name] != kernels))
                      for name, kernels in layers.items())
        totals = _totals(clustered, compress_model(clustered, max_length, block_channels))
        row = {"keep": keep,
               "max_distinct": max(int(np.count_nonzero(histogram(kernel_symbols(k))))
                                   for k in clustered.values()),
               "bits_flipped": flipped,
               "flipped_fraction": flipped / raw,
               "payload_bits": totals["payload_bits"],
               "compressed_bits": totals["payload_bits"] + totals["overhead_bits"],
               "ratio": totals["ratio"]}
        if net is not None:
            if flipped:
                params = dict(net.params)
                params.update({f"{name}.weight": k for name, k in clustered.items()})
                logits = FracBNN(params).logits(pixels).astype(np.int64)
            else:
                logits = reference      # identical weights: identical outputs
            changed = logits.argmax(axis=1) != reference.argmax(axis=1)
            row["class_changes"] = {name: int(changed[set_of_image == index].sum())
                                    for index, name in enumerate(image_sets)}
            row["max_logit_change"] = float(np.abs(logits - reference).max()) / 128
        rows.append(row)
    return rows


def _evaluation_images():
    """The bundled photos and a few uniform random images (a fixed seed)."""
    photos = np.stack([load_image(path) for path in bundled_photos()])
    noise = np.random.default_rng(0).integers(0, 256, (RANDOM_IMAGES, 3, 32, 32), dtype=np.uint8)
    return {"photos": photos, "random": noise}


def build_report(net=None, max_length=DEFAULT_MAX_LENGTH, block_channels=DEFAULT_BLOCK_CHANNELS,
                 keeps=CLUSTER_KEEPS):
    """Everything ``python -m benchmarks.compression`` prints, as a JSON-serialisable dict
    (``net``: the FracBNN to report on, default the bundled model)."""
    net = net if net is not None else FracBNN.default()
    images = _evaluation_images()
    report = {"settings": {"max_length": max_length, "block_channels": block_channels,
                           "tables": "auto", "cluster_keeps": list(keeps)},
              "models": {}}
    for model in MODELS:
        layers = model_kernels(model, net)
        compressed = compress_model(layers, max_length, block_channels, "auto")
        evaluate = model == "fracbnn_cifar10"      # the only model the project can run
        report["models"][model] = {
            "layers": layer_rows(layers, compressed, max_length),
            "total": _totals(layers, compressed),
            "table_groups": [[layer.name for layer in compressed.layers if layer.table == t]
                             for t in range(len(compressed.tables))],
            "strategies": strategy_rows(layers, max_length, block_channels),
            "clustering": clustering_rows(layers, keeps, max_length, block_channels,
                                          net if evaluate else None, images if evaluate else None),
        }
        if evaluate:
            report["models"][model]["evaluation_images"] = {name: len(pixels)
                                                            for name, pixels in images.items()}
    return report


def _table(headers, rows):
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = ["  ".join(f"{cell:>{w}}" for cell, w in zip(line, widths))
             for line in [headers] + rows]
    return lines[:1] + ["  ".join("-" * w for w in widths)] + lines[1:]


def format_report(report):
    """The report as readable text tables."""
    settings = report["settings"]
    out = [f"Huffman kernel compression: canonical codes of at most {settings['max_length']} "
           f"bits, blocks of {settings['block_channels']} output channels, tables 'auto'.",
           "H = order-0 entropy (bits/kernel); L = average code length; ratio = 9 / L; "
           "own table saving = whole-model-table payload - own payload - own table bits."]
    for model, data in report["models"].items():
        total = data["total"]
        out += ["", f"== {model} ==", ""]
        out += _table(
            ["layer", "kernels", "distinct", "H", "L own", "L used", "table", "ratio",
             "own table", "own saving"],
            [[r["layer"], r["kernels"], r["distinct"], f"{r['entropy']:.3f}",
              f"{r['own_length']:.3f}", f"{r['length']:.3f}", r["table"], f"{r['ratio']:.3f}",
              r["own_table_bits"], r["own_saving_bits"]] for r in data["layers"]])
        out += ["", "tables: " + "; ".join(f"{t}: {', '.join(names)}"
                                           for t, names in enumerate(data["table_groups"]))]
        out += ["", f"total: {total['kernels']} kernels, {total['distinct']} distinct, "
                f"raw {total['raw_bits']} bits; payload {total['payload_bits']} bits = "
                f"{total['payload_bits'] / total['kernels']:.3f} bits/kernel "
                f"({100 * total['payload_excess']:+.2f} % vs the entropy of the tables' pooled "
                f"histograms, {total['group_entropy_bits'] / total['kernels']:.3f}; per-layer H "
                f"{total['entropy_bits'] / total['kernels']:.3f})",
                f"overhead: tables {total['table_bits']} + offsets {total['offset_bits']} = "
                f"{total['overhead_bits']} bits = {100 * total['overhead_fraction']:.2f} % of raw;"
                f" other metadata (names, shapes, CRCs) {total['metadata_bits']} bits",
                f"ratio: payload {total['payload_ratio']:.4f}x, with overhead "
                f"{total['ratio']:.4f}x; serialised blob {total['blob_bits'] // 8} bytes", ""]
        out += _table(["strategy", "tables", "payload", "table bits", "offset bits",
                       "payload+overhead", "ratio"],
                      [[r["strategy"], r["tables"], r["payload_bits"], r["table_bits"],
                        r["offset_bits"], r["payload_bits"] + r["overhead_bits"],
                        f"{r['ratio']:.4f}"] for r in data["strategies"]])
        rows = data["clustering"]
        sets = list(rows[0].get("class_changes", {}))
        extra = [f"changed {name}" for name in sets] + (["max |dlogit|"] if sets else [])
        out += ["", "lossy clustering (K patterns kept per layer):", ""]
        out += _table(["K", "max distinct", "bits flipped", "flipped %", "payload+overhead",
                       "ratio"] + extra,
                      [[r["keep"], r["max_distinct"], r["bits_flipped"],
                        f"{100 * r['flipped_fraction']:.2f}", r["compressed_bits"],
                        f"{r['ratio']:.4f}"]
                       + [r["class_changes"][name] for name in sets]
                       + ([f"{r['max_logit_change']:.4f}"] if sets else []) for r in rows])
        if sets:
            counts = ", ".join(f"{n} {name}" for name, n in data["evaluation_images"].items())
            out += [f"(class changes out of {counts} images; logit change in logit units)"]
    return "\n".join(out)


# Beyond these the options only make blocks larger than any layer (or codes the format cannot
# hold): refused by name instead of failing deep inside the compressor.
MAX_BLOCK_CHANNELS = 1 << 16


def bounded_int(low, high):
    """An argparse type: an integer in ``low..high``, else an error naming the option."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high}")
        return value
    return parse


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compression",
        description="Per-layer and whole-model Huffman compression of the binary 3x3 kernels of "
                    "the FracBNN model and of the bundled BNN-PYNQ CNV kernels, table "
                    "strategies and the lossy clustering trade-off.")
    parser.add_argument("--model", type=Path, default=None,
                        help="model parameter file (.npz); default: the bundled CIFAR-10 model")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--max-length", type=bounded_int(1, MAX_CODE_LENGTH),
                        default=DEFAULT_MAX_LENGTH,
                        help=f"longest code, 1..{MAX_CODE_LENGTH} (default {DEFAULT_MAX_LENGTH})")
    parser.add_argument("--block-channels", type=bounded_int(1, MAX_BLOCK_CHANNELS),
                        default=DEFAULT_BLOCK_CHANNELS,
                        help="output channels per independently decodable block, "
                             f"1..{MAX_BLOCK_CHANNELS} (default {DEFAULT_BLOCK_CHANNELS})")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        net = FracBNN.default() if args.model is None else FracBNN.from_npz(args.model)
        report = build_report(net, args.max_length, args.block_channels)
    except (ModelFormatError, ValueError, TypeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
