"""The FracBNN CIFAR-10 network: topology, parameter loading/validation and inference."""

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from . import layers
from .conv import TAPS, THERMOMETER_BITS, BinaryConv3x3, thermometer_bits
from .files import ArrayFileError, NpzArchive
from .fixedpoint import WT_MAX, WT_MIN

__all__ = ["ConvSpec", "PG_CONVS", "CLASSES", "COLOURS", "IMAGE_SHAPE", "IMAGE_SIZE", "PIXELS",
           "INPUT_CHANNELS", "STEM_CHANNELS", "STEM_SUM_MAX", "PG_SUM_MAX", "ModelFormatError",
           "FracBNN", "check_pixels", "CLASS_NAMES_KEY"]

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SHAPE = (3, 32, 32)
COLOURS, IMAGE_SIZE = IMAGE_SHAPE[0], IMAGE_SHAPE[-1]    # rows = cols
PIXELS = IMAGE_SIZE * IMAGE_SIZE
INPUT_CHANNELS = COLOURS * THERMOMETER_BITS            # 96: 3 colours x 32 thermometer bits
STEM_CHANNELS = 16
_BATCH = 16                   # images per forward pass


@dataclass(frozen=True)
class ConvSpec:
    """One precision-gated binary 3x3 convolution of the network."""
    block: str        # "layer{L}_{b}"
    index: int        # 1 or 2: conv1 or conv2 of the block
    cin: int
    cout: int
    stride: int
    size: int         # input rows = cols

    @property
    def name(self):
        return f"{self.block}.conv{self.index}"

    @property
    def out_size(self):
        return self.size // self.stride


def _pg_convs():
    specs, cin, size = [], STEM_CHANNELS, IMAGE_SIZE
    for stage, cout in enumerate((16, 32, 64), start=1):
        for b in range(3):
            stride = 2 if cout != cin else 1
            specs.append(ConvSpec(f"layer{stage}_{b}", 1, cin, cout, stride, size))
            size //= stride
            specs.append(ConvSpec(f"layer{stage}_{b}", 2, cout, cout, 1, size))
            cin = cout
    return tuple(specs)


PG_CONVS = _pg_convs()
# The largest |conv sum| (every tap of every input channel agreeing): of the thermometer conv
# (864) and of the PG convs (576).
STEM_SUM_MAX = TAPS * INPUT_CHANNELS
PG_SUM_MAX = TAPS * max(conv.cin for conv in PG_CONVS)


class ModelFormatError(ValueError):
    """A model parameter file is missing, truncated or holds a malformed array."""


def _expected_arrays():
    """Every key of a model file: (shape, dtype, (min, max)) of its array."""
    wt_range = (WT_MIN, WT_MAX)
    bits = (0, 1)
    spec = {
        "conv1.weight": ((STEM_CHANNELS, INPUT_CHANNELS, 3, 3), np.uint8, bits),
        "bn1.weight": ((STEM_CHANNELS,), np.int16, wt_range),
        "bn1.bias": ((STEM_CHANNELS,), np.int16, wt_range),
        "linear.weight": ((len(CLASSES), 64), np.int16, wt_range),
        "linear.bias": ((len(CLASSES),), np.int16, wt_range),
    }
    for conv in PG_CONVS:
        k, c = conv.index, (conv.cout,)
        spec[f"{conv.name}.weight"] = ((conv.cout, conv.cin, 3, 3), np.uint8, bits)
        for key in (f"{conv.name}.threshold", f"bn{k}.weight", f"bn{k}.bias",
                    f"rprelu{k}.shift_x_bias", f"rprelu{k}.prelu_weight",
                    f"rprelu{k}.shift_y_bias", f"bn{k + 2}.weight", f"bn{k + 2}.bias"):
            full = key if key.startswith(conv.block) else f"{conv.block}.{key}"
            spec[full] = (c, np.int16, wt_range)
    return spec


EXPECTED_ARRAYS = _expected_arrays()
# Present in the official header and file, all zero, not used by the datapath.
OPTIONAL_ARRAYS = {"encoder_placeholder": ((8, 8), np.int16, (0, 0))}
# Optional: the class of each logit as text, [K] unicode for K <= 10 (a trained model's data set;
# logits K..9 have no name). Without it the classes are CLASSES.
CLASS_NAMES_KEY = "class_names"
MAX_CLASS_NAME = 64          # characters


def _check_class_names_layout(shape, dtype, source):
    if len(shape) != 1 or not 1 <= shape[0] <= len(CLASSES):
        raise ModelFormatError(f"{source}: {CLASS_NAMES_KEY!r} has shape {list(shape)}, "
                               f"expected [K] with 1 <= K <= {len(CLASSES)}")
    if dtype.kind != "U" or dtype.itemsize // 4 > MAX_CLASS_NAME:
        raise ModelFormatError(f"{source}: {CLASS_NAMES_KEY!r} has dtype {dtype}, expected "
                               f"unicode text of at most {MAX_CLASS_NAME} characters (<U...)")


def _check_class_names(names, source):
    for name in names.tolist():
        if not name.strip() or not name.isprintable():
            raise ModelFormatError(f"{source}: {CLASS_NAMES_KEY!r} holds {name!r}; names must "
                                   "be non-blank printable text")
    if len(set(names.tolist())) != len(names):
        raise ModelFormatError(f"{source}: {CLASS_NAMES_KEY!r} names a class twice")


def _check_layout(layouts, source):
    """Check the names, shapes and dtypes ``{key: (shape, dtype)}`` of a model's arrays
    (names first: an archive's headers are read only for known names)."""
    known = EXPECTED_ARRAYS | OPTIONAL_ARRAYS
    missing = sorted(set(EXPECTED_ARRAYS) - set(layouts))
    if missing:
        raise ModelFormatError(f"{source}: missing {len(missing)} array(s), first {missing[0]!r}")
    unknown = sorted(set(layouts) - set(known) - {CLASS_NAMES_KEY})
    if unknown:
        raise ModelFormatError(f"{source}: unexpected array {unknown[0]!r}")
    for key, layout in layouts.items():
        if layout is None:
            continue
        if key == CLASS_NAMES_KEY:
            _check_class_names_layout(*layout, source)
            continue
        (shape, dtype), (expected_shape, expected_dtype, _) = layout, known[key]
        if tuple(shape) != expected_shape:
            raise ModelFormatError(f"{source}: {key!r} has shape {list(shape)}, "
                                   f"expected {list(expected_shape)}")
        if dtype != expected_dtype:
            raise ModelFormatError(f"{source}: {key!r} has dtype {dtype}, "
                                   f"expected {np.dtype(expected_dtype)}")


def _validate(params, source):
    known = EXPECTED_ARRAYS | OPTIONAL_ARRAYS
    params = {key: np.asarray(value) for key, value in params.items()}
    _check_layout({key: (value.shape, value.dtype) for key, value in params.items()}, source)
    for key, value in params.items():
        if key == CLASS_NAMES_KEY:
            _check_class_names(value, source)
            continue
        lo, hi = known[key][2]
        if value.size and (value.min() < lo or value.max() > hi):
            raise ModelFormatError(f"{source}: {key!r} has values in [{value.min()}, "
                                   f"{value.max()}], allowed [{lo}, {hi}]")
    return params


def _read_npz(path):
    """The arrays of a model file. Names, then shapes and dtypes (from the archive members'
    ``.npy`` headers) are checked before any array data is read, so that no file makes this
    read or decompress more than a model's worth of data."""
    try:
        with NpzArchive(path) as archive:
            _check_layout(dict.fromkeys(archive.names), path)
            layouts = {name: archive.layout(name) for name in archive.names}
            _check_layout({name: (layout.shape, layout.dtype)
                           for name, layout in layouts.items()}, path)
            return {name: archive.read(name) for name in archive.names}
    except ArrayFileError as error:
        raise ModelFormatError(str(error)) from None


def check_pixels(pixels):
    """Validate a batch of images: a uint8 array of shape [N, 3, 32, 32]."""
    if not isinstance(pixels, np.ndarray):
        raise TypeError(f"pixels must be a numpy array, not {type(pixels).__name__}")
    if pixels.dtype != np.uint8:
        raise TypeError(f"pixels must be uint8 (0..255), not {pixels.dtype}")
    if pixels.ndim != 4 or pixels.shape[1:] != IMAGE_SHAPE:
        hint = " (a single image? use pixels[None])" if pixels.shape == IMAGE_SHAPE else ""
        raise ValueError(f"pixels must have shape [N, 3, 32, 32], not {list(pixels.shape)}{hint}")
    return pixels


class FracBNN:
    """The bit-exact integer model of the official FracBNN CIFAR-10 accelerator.

    ``params`` maps the keys of the model file (see the README) to arrays; they are validated.
    """

    def __init__(self, params, source="params"):
        self.params = _validate(dict(params), source)
        self._convs = {name[:-len(".weight")]: BinaryConv3x3(value)
                       for name, value in self.params.items() if name.endswith("conv1.weight")
                       or name.endswith("conv2.weight")}

    @property
    def class_names(self):
        """The class of each logit: the model file's ``class_names`` (logits past them are
        named ``class K``), else :data:`CLASSES`."""
        if CLASS_NAMES_KEY not in self.params:
            return CLASSES
        names = tuple(self.params[CLASS_NAMES_KEY].tolist())
        return names + tuple(f"class {k}" for k in range(len(names), len(CLASSES)))

    @classmethod
    def from_npz(cls, path):
        """Load and validate a model file (``.npz``, the layout of the bundled model)."""
        return cls(_read_npz(path), source=str(path))

    @classmethod
    def default(cls):
        """The bundled official trained CIFAR-10 model."""
        with resources.as_file(resources.files(__package__) / "data" / "fracbnn_cifar10.npz") as p:
            return cls.from_npz(Path(p))

    def logits(self, pixels, trace=False):
        """uint8 pixels ``[N, 3, 32, 32]`` -> int16 logits ``[N, 10]`` (FM codes, value/128).

        With ``trace=True`` also returns a dict of every intermediate tensor, with the keys and
        layouts of the public vectors' ``trace.*`` arrays.
        """
        check_pixels(pixels)
        # A few images at a time keep every feature map in the CPU cache.
        parts = [self._forward(pixels[start:start + _BATCH], trace)
                 for start in range(0, max(len(pixels), 1), _BATCH)]
        logits = np.concatenate([part[0] for part in parts])
        if not trace:
            return logits
        return logits, {key: np.concatenate([part[1][key] for part in parts])
                        for key in parts[0][1]}

    def _forward(self, pixels, trace):
        p = self.params
        record = {}
        acc = self._convs["conv1"](thermometer_bits(pixels))
        x = layers.input_bn(acc, p["bn1.weight"], p["bn1.bias"])
        record["conv1_acc"], record["bn1"] = acc, x
        for conv in PG_CONVS:
            residual = layers.shortcut(x) if conv.stride == 2 else x
            x = self._pg_block_half(conv, x, residual, record if trace else None)
            record[f"{conv.block}.out{conv.index}"] = x
        pool, pool_fm = layers.global_pool(x)
        record["pool"], record["pool_fm"] = pool, pool_fm
        logits = layers.linear(pool_fm, p["linear.weight"], p["linear.bias"]).astype(np.int16)
        return logits, {key: _trace_dtype(key, value) for key, value in record.items()}

    def _pg_block_half(self, conv, x, residual, record):
        """One PG conv with its merge: Q2 -> MSB conv -> gate -> LSB conv -> merge."""
        p, prefix, k = self.params, conv.block, conv.index
        msb_plane, lsb_plane = layers.bit_planes(layers.quantize(x))
        binary_conv, threshold = self._convs[conv.name], p[f"{conv.name}.threshold"]
        msb = binary_conv(msb_plane, conv.stride)
        gate = layers.precision_gate(msb, threshold)
        lsb = np.where(gate, binary_conv(lsb_plane, conv.stride), 0)
        if record is not None:
            # The official accelerator evaluates the gate at every input position, also where a
            # stride-2 conv drops the result; the trace keeps that layout.
            full_msb = msb if conv.stride == 1 else binary_conv(msb_plane, 1)
            record[f"{conv.name}.gate"] = layers.precision_gate(full_msb, threshold)
        return layers.merge(
            msb, lsb, residual,
            bn=(p[f"{prefix}.bn{k}.weight"], p[f"{prefix}.bn{k}.bias"]),
            rprelu=(p[f"{prefix}.rprelu{k}.shift_x_bias"], p[f"{prefix}.rprelu{k}.prelu_weight"],
                    p[f"{prefix}.rprelu{k}.shift_y_bias"]),
            bn_out=(p[f"{prefix}.bn{k + 2}.weight"], p[f"{prefix}.bn{k + 2}.bias"]))


def _trace_dtype(key, value):
    if key.endswith(".gate"):
        return value.astype(bool)
    if key == "pool":
        return value.astype(np.int32)
    return value.astype(np.int16)
