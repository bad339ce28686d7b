"""Command line: ``python -m fracbnn_golden {classify,logits} ...`` (``--help``
for details)."""

import argparse
import sys
from pathlib import Path

import numpy as np

from .files import check_output_file
from .images import load_image, load_pixels
from .model import FracBNN, ModelFormatError


def _load_model(path):
    return FracBNN.default() if path is None else FracBNN.from_npz(path)


def classify(args):
    net = _load_model(args.model)
    pixels = np.stack([load_image(path) for path in args.images])
    logits = net.logits(pixels)
    width = max(len(str(path)) for path in args.images)
    names = net.class_names        # the model file's class names, else the CIFAR-10 classes
    print(f"{'image':<{width}}  {'class':<10}  logits (value = code / 128, classes "
          f"{', '.join(names)})")
    for path, row in zip(args.images, logits):
        values = " ".join(f"{code / 128:>10}" for code in row)     # code / 128 prints exactly
        print(f"{str(path):<{width}}  {names[int(np.argmax(row))]:<10}  {values}")
    return 0


def logits(args):
    check_output_file(args.out, "--out", suffix=".npy")
    pixels = load_pixels(args.pixels)
    net = _load_model(args.model)
    result = net.logits(pixels)
    np.save(args.out, result)
    print(f"wrote {args.out}: int16 {list(result.shape)} logits (FM codes, value = code / 128)")
    return 0


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

    sub = commands.add_parser("logits", help="logits of a batch of images stored as .npy/.npz",
                              description="Read uint8 pixels [N, 3, 32, 32] from a .npy file (or "
                                          "the 'pixels' array of an .npz) and write int16 logits "
                                          "[N, 10] (FM codes) to a .npy file.")
    sub.add_argument("--pixels", type=Path, required=True,
                     help="input .npy, or .npz with 'pixels': uint8 [N, 3, 32, 32]")
    sub.add_argument("--out", type=Path, required=True, help="output .npy, int16 [N, 10]")
    sub.set_defaults(run=logits)
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
