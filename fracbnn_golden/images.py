"""Network input: image files (any format Pillow reads) -> uint8 [3, 32, 32], and batches of
pixels stored as ``.npy``/``.npz`` -> uint8 [N, 3, 32, 32]."""

import warnings
from importlib import resources
from pathlib import Path

import numpy as np

from .files import ArrayFileError, NpzArchive, file_kind, read_npy
from .model import check_pixels

__all__ = ["load_image", "fit_image", "load_pixels", "bundled_photos"]

SIZE = 32
PIXELS_KEY = "pixels"
# Modes with an alpha channel (composited onto white); premultiplied ones are converted first.
_ALPHA_MODES = {"RGBA": "RGBA", "LA": "LA", "PA": "PA", "P": "P", "RGBa": "RGBA", "La": "LA"}
# Modes Pillow converts to RGB by their own meaning (8 bits per channel).
_COLOUR_MODES = {"1", "L", "RGB", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
_TIFF_BITS, _TIFF_SAMPLE_FORMAT = 258, 339      # BitsPerSample, SampleFormat (1 uint, 2 int)


def _sample_range(image):
    """``(maximum, signed)`` of an integer image's samples (mode I or I;16*): the full range
    of the file's samples, from the TIFF tags or the format's bit depth; None when unknown
    (and for the other modes). Needs the image as opened (its format and tags)."""
    mode = image.mode
    if mode != "I" and not mode.startswith("I;16"):
        return None
    if image.format == "TIFF":
        tags = image.tag_v2
        bits = int(tags.get(_TIFF_BITS, (16,))[0])
        if tags.get(_TIFF_SAMPLE_FORMAT, (1,))[0] == 2:
            # A signed image's brightness range is 0 .. the largest positive value.
            return (1 << (bits - 1)) - 1, True
        return (1 << bits) - 1, False
    if mode.startswith("I;16") or image.format in ("PNG", "PPM"):
        return 0xFFFF, False            # Pillow reads PNG's and PGM's 16 bits into mode I
    return None


def _to_eight_bits(image, sample_range, format_name, path):
    """An image of mode I, I;16* or F as mode L, scaled by its real range (:func:`load_image`);
    ``sample_range``: what :func:`_sample_range` found for the file."""
    from PIL import Image

    values = np.asarray(image)
    if image.mode == "F":
        if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
            finite = values[np.isfinite(values)]
            found = f"{finite.min():g}..{finite.max():g}" if finite.size else "no finite values"
            if finite.size < values.size:
                found += ", and NaN or infinity"
            raise ValueError(f"{path}: floating-point pixels must lie in 0..1 (found {found})")
        eight = np.floor(values.astype(np.float64) * 255 + 0.5)
    else:
        if sample_range is None or sample_range[0] < 1:
            raise ValueError(f"{path}: integer pixels (Pillow mode {image.mode}) in a "
                             f"{format_name or 'file of unknown format'} have no known "
                             "brightness range; save the image with 8 or 16 bits per sample")
        maximum, signed = sample_range
        values = values.astype(np.int64)
        if image.mode == "I" and not signed and maximum == 0xFFFF_FFFF:
            values &= 0xFFFF_FFFF       # Pillow holds unsigned 32-bit samples as int32
        if signed and values.min() < 0:
            raise ValueError(f"{path}: signed integer pixels with negative values "
                             f"(down to {values.min()}) have no brightness; save the image "
                             "with unsigned samples")
        values = np.minimum(values, maximum)
        eight = (values * 510 + maximum) // (2 * maximum)     # round(v * 255 / maximum)
    return Image.fromarray(eight.astype(np.uint8), "L")


def _to_rgb(image, sample_range, format_name, path):
    """Any Pillow image as 8-bit RGB with its real range; transparency over white."""
    from PIL import Image

    mode = image.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        return _to_eight_bits(image, sample_range, format_name, path).convert("RGB")
    if mode in _ALPHA_MODES:
        rgba = image.convert(_ALPHA_MODES[mode]).convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        white.alpha_composite(rgba)
        return white.convert("RGB")
    if mode in _COLOUR_MODES:
        return image.convert("RGB")
    raise ValueError(f"{path}: Pillow image mode {mode!r} is not supported; save the image as "
                     "8-bit RGB or greyscale")


def _read(path):
    """The image file ``path`` loaded, EXIF orientation applied, with its
    :func:`_sample_range` and format name; every failure a ValueError naming the file
    (FileNotFoundError for a missing one)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            # Past Pillow's limit it only warns; past twice the limit it refuses.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                return ImageOps.exif_transpose(image), _sample_range(image), image.format
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a folder, not an image file") from None
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not an image file Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValueError(f"{path}: the image has more than {limit:,} pixels, Pillow's limit "
                         "against decompression bombs (Image.MAX_IMAGE_PIXELS)") from None
    except MemoryError:
        raise ValueError(f"{path}: the image does not fit in memory") from None
    except Exception as error:     # Pillow's decoders raise many kinds of errors
        # OSError (truncated, broken data), SyntaxError (PNG chunks), struct.error, ...
        raise ValueError(f"{path}: cannot read the image: {error}") from None


def load_image(path):
    """Read an image file as uint8 ``[3, 32, 32]`` (colour, row, col).

    The EXIF orientation is applied; 16- and 32-bit integer images are scaled from their full
    range (a TIFF's bits per sample; 0..largest positive value for signed samples), floating-
    point images from 0..1, by rounding ``value * 255 / maximum``; other modes are converted to
    RGB by Pillow. Transparent images are composited onto white, the centre square is cropped and
    resized to 32x32 with Lanczos filtering (the preprocessing of the public test vectors). A
    file that cannot be read or converted raises ValueError naming it.
    """
    image, sample_range, format_name = _read(path)
    if 0 in image.size:
        raise ValueError(f"{path}: the image has no pixels ({image.size[0]} x {image.size[1]})")
    return fit_image(_to_rgb(image, sample_range, format_name, path))


def fit_image(image):
    """An 8-bit RGB Pillow image as network input, uint8 ``[3, 32, 32]``: the centre square
    cropped and resized to 32x32 with Lanczos filtering (what :func:`load_image` does after
    reading a file; also used for arrays of other sizes, e.g. by ``fracbnn_train``)."""
    from PIL import Image

    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    if image.size != (SIZE, SIZE):
        image = image.resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).copy()


def _check_pixel_layout(layout, what):
    if layout.dtype != np.uint8:
        raise ArrayFileError(f"{what}: pixels must be uint8 (0..255), not {layout.dtype}")
    if len(layout.shape) != 4 or layout.shape[1:] != (3, SIZE, SIZE):
        raise ArrayFileError(f"{what}: pixels must have shape [N, 3, 32, 32], not "
                             f"{list(layout.shape)}")


def load_pixels(path):
    """A batch of images from ``path``: uint8 ``[N, 3, 32, 32]`` stored as ``.npy``, or as the
    array ``pixels`` of an ``.npz`` (other arrays are ignored). The kind is told by the file's
    content. The shape and dtype are checked from the header before the data is read; any
    problem raises ValueError naming the file (FileNotFoundError for a missing one)."""
    path = Path(path)
    kind = file_kind(path)
    if kind == "npy":
        return check_pixels(read_npy(path, lambda layout: _check_pixel_layout(layout, path)))
    if kind is None:
        raise ArrayFileError(f"{path}: neither a .npy array nor a .npz archive")
    with NpzArchive(path) as archive:
        if PIXELS_KEY not in archive:
            raise ArrayFileError(f"{path}: the .npz archive has no {PIXELS_KEY!r} array (it has "
                                 f"{', '.join(map(repr, archive.names)) or 'none'})")
        what = f"{path}: array {PIXELS_KEY!r}"
        return check_pixels(archive.read(PIXELS_KEY,
                                         lambda layout: _check_pixel_layout(layout, what)))


def bundled_photos():
    """Paths of the real photos bundled with the package (see ``data/README.md``)."""
    folder = Path(str(resources.files(__package__) / "data" / "photos"))
    return sorted(folder.glob("*.png"))
