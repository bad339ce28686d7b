"""Command line: ``python -m fracbnn_golden {classify,logits,compress-report} ...`` (``--help``
for details)."""

import argparse
import sys
from pathlib import Path

import numpy as np

from .images import load_image
from .model import CLASSES, FracBNN, ModelFormatError


def _load_model(path):
    return FracBNN.default() if path is None else FracBNN.from_npz(path)


def classify(args):
    net = _load_model(args.model)
    pixels = np.stack([load_image(path) for path in args.images])
    logits = net.logits(pixels)
    width = max(len(str(path)) for path in args.images)
    print(f"{'image':<{width}}  {'class':<10}  logits (value = code / 128, classes "
          f"{', '.join(CLASSES)})")
    for path, row in zip(args.images, logits):
        values = " ".join(f"{code / 128:>10}" for code in row)     # code / 128 prints exactly
        print(f"{str(path):<{width}}  {CLASSES[int(np.argmax(row))]:<10}  {values}")
    return 0


def logits(args):
    net = _load_model(args.model)
    try:
        pixels = np.load(args.pixels, allow_pickle=False)
    except (ValueError, EOFError) as error:
        raise ValueError(f"{args.pixels}: not a readable .npy array: {error}") from error
    result = net.logits(pixels)
    np.save(args.out, result)
    print(f"wrote {args.out}: int16 {list(result.shape)} logits (FM codes, value = code / 128)")
    return 0


def compress_report(args):
    from .compress_report import run

    return run(args, _load_model(args.model))


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m fracbnn_golden",
        description="Bit-exact golden model of the FracBNN CIFAR-10 accelerator.")
    parser.add_argument("--model", type=Path, default=None,
                        help="model parameter file (.npz); default: the bundled CIFAR-10 model")
    commands = parser.add_subparsers(dest="command", required=True)

    sub = commands.add_parser("classify", help="classify image files (any format Pillow reads)",
                              description="Resize each image to 32x32 (centre crop, Lanczos), "
                                          "classify it and print the class and the 10 logits.")
    sub.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    sub.set_defaults(run=classify)

    sub = commands.add_parser("logits", help="logits of a batch of images stored as .npy",
                              description="Read uint8 pixels [N, 3, 32, 32] from a .npy file and "
                                          "write int16 logits [N, 10] (FM codes) to a .npy file.")
    sub.add_argument("--pixels", type=Path, required=True, help="input .npy, uint8 [N, 3, 32, 32]")
    sub.add_argument("--out", type=Path, required=True, help="output .npy, int16 [N, 10]")
    sub.set_defaults(run=logits)

    sub = commands.add_parser("compress-report", help="Huffman compression of the conv kernels",
                              description="Per-layer and whole-model Huffman compression of the "
                                          "binary 3x3 kernels of the FracBNN model and of the "
                                          "bundled BNN-PYNQ CNV kernels, table strategies and "
                                          "the lossy clustering trade-off.")
    sub.add_argument("--json", action="store_true", help="print machine-readable JSON")
    sub.add_argument("--max-length", type=int, default=12, help="longest code (default 12)")
    sub.add_argument("--block-channels", type=int, default=16,
                     help="output channels per independently decodable block (default 16)")
    sub.set_defaults(run=compress_report)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ModelFormatError, ValueError, TypeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
