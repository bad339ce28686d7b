"""The training section of BENCHMARKS.md: the MNIST demo trained by ``python -m
fracbnn_train`` (``nox -s train``), its agreement with the golden model, the RTL check and the
clustering trade-off, from ``benchmarks/training_mnist.json``.

Training takes up to 20 minutes, so ``nox -s bench`` does not rerun it: the JSON is the record
of one run (written by ``python -m benchmarks.training --report R --clustering C --rtl X``
from the training report, the clustering report and the RTL check) and the bench renders it.
"""

import argparse
import json
import sys
from pathlib import Path

__all__ = ["TRAINING_JSON", "training_section", "main"]

TRAINING_JSON = Path(__file__).with_name("training_mnist.json")


def training_section(path=TRAINING_JSON):
    """Markdown lines for BENCHMARKS.md (none when ``path`` does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    record = json.loads(path.read_text())
    run = record["training"]
    config = run["config"]
    epochs = config["epochs"]
    out = ["## Training: the MNIST demo (`python -m fracbnn_train --data mnist`)", "",
           f"{run['train_images']:,} training and {run['test_images']:,} test digits (the last "
           f"100 of each class), stages {epochs[0]} + {epochs[1]} + {epochs[2]} epochs "
           f"(2-bit activations, binary weights, gate), batch {config['batch_size']}, "
           f"seed {config['seed']}, {run['device']}, {run.get('threads', '?')} threads. "
           "docs/training.md describes the method.", "",
           "| figure | value |", "|---|---|",
           f"| golden-model test accuracy (exported file) | {100 * run['golden_accuracy']:.2f} % |",
           f"| PyTorch test accuracy (evaluation mode) | {100 * run['torch_accuracy']:.2f} % |",
           f"| predicted classes PyTorch = golden model | {run['agreeing']:,} of "
           f"{run['test_images']:,} ({100 * run['agreement']:.2f} %) |",
           f"| gate rate (LSB pass used, test set) | {100 * run['gate_rate']:.1f} % |",
           f"| training time, wall clock | {run['training_seconds'] / 60:.1f} min |"]
    if run.get("cpu_seconds") is not None:
        out.append(f"| CPU time (all threads) | {run['cpu_seconds'] / 60:.1f} min |")
    if run.get("load_average") is not None:
        out.append(f"| machine load average at the end | {run['load_average']:.1f} |")
    rtl = record.get("rtl")
    if rtl:
        out.append(f"| RTL simulation (Verilator), test digits | {rtl['images']} images, "
                   f"{rtl['bit_exact']} bit-exact, {rtl['cycles_per_image']:,} cycles/image |")
    if record.get("note"):
        out += ["", record["note"]]
    out += ["", "Per epoch (test accuracy in evaluation mode, i.e. with the exported "
            "arithmetic):", "", "| epoch | stage | loss | train acc | test acc | gate rate | s |",
            "|---|---|---|---|---|---|---|"]
    for row in run["history"]:
        out.append(f"| {row['epoch']} | {row['stage']} | {row['loss']:.4f} | "
                   f"{100 * row['train_accuracy']:.1f} % | {100 * row['test_accuracy']:.1f} % | "
                   f"{100 * row['test_gate_rate']:.1f} % | {row['seconds']:.0f} |")
    clustering = record.get("clustering")
    if clustering:
        out += ["", "Kernel clustering (the compression report's lossy option) on the trained "
                "model, golden model on the test set (`python -m fracbnn_train.clustering`; "
                "plot: docs/clustering_mnist.png):", ""]
        out += clustering["table"].splitlines()
    out.append("")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.training",
        description="Record a training run for BENCHMARKS.md (benchmarks/training_mnist.json).")
    parser.add_argument("--report", type=Path, required=True,
                        help="the JSON of python -m fracbnn_train --report")
    parser.add_argument("--clustering", type=Path,
                        help="clustering.json and clustering.md of python -m "
                             "fracbnn_train.clustering (its folder)")
    parser.add_argument("--rtl", type=Path,
                        help="the .npz of python -m sim.accelerator --model ... --out")
    parser.add_argument("--golden", type=Path,
                        help="the model file, to compare the RTL logits with (with --rtl)")
    parser.add_argument("--pixels", type=Path, help="the images given to the RTL (with --rtl)")
    parser.add_argument("--note", help="a remark on the run, printed under its table")
    args = parser.parse_args(argv)
    try:
        record = {"training": json.loads(args.report.read_text())}
        if args.note:
            record["note"] = args.note
        if args.clustering:
            record["clustering"] = {
                "rows": json.loads((args.clustering / "clustering.json").read_text())["rows"],
                "table": (args.clustering / "clustering.md").read_text()}
        if args.rtl:
            import numpy as np

            from fracbnn_golden import FracBNN
            from fracbnn_golden.images import load_pixels
            from sim.accelerator import interval
            with np.load(args.rtl) as rtl:
                logits, cycles = rtl["logits"], rtl["cycles"]
                # The interval between back-to-back images where the run recorded it.
                per_image = interval(rtl["done_cycle"] if "done_cycle" in rtl else None)
            if per_image is None:
                per_image = int(cycles.max())
            golden = FracBNN.from_npz(args.golden).logits(load_pixels(args.pixels))
            record["rtl"] = {"images": len(logits),
                             "bit_exact": int((logits == golden).all(axis=1).sum()),
                             "cycles_per_image": per_image}
    except (OSError, ValueError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    TRAINING_JSON.write_text(json.dumps(record, indent=2) + "\n")
    print("\n".join(training_section()))
    print(f"wrote {TRAINING_JSON}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
