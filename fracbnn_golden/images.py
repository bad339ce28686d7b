"""Loading photos as network input: any format Pillow reads -> uint8 [3, 32, 32]."""

from importlib import resources
from pathlib import Path

import numpy as np

__all__ = ["load_image", "bundled_photos"]

SIZE = 32


def load_image(path):
    """Read an image file as uint8 ``[3, 32, 32]`` (colour, row, col).

    Transparent images are composited onto white, the centre square is cropped and resized
    to 32x32 with Lanczos filtering (the preprocessing of the public test vectors).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("RGBA", "LA", "P", "PA"):
                rgba = image.convert("RGBA")
                image = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                image.alpha_composite(rgba)
            image = image.convert("RGB")
    except UnidentifiedImageError as error:
        raise ValueError(f"{path}: not an image file Pillow can read") from error
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    if image.size != (SIZE, SIZE):
        image = image.resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).copy()


def bundled_photos():
    """Paths of the real photos bundled with the package (see ``data/README.md``)."""
    folder = Path(str(resources.files(__package__) / "data" / "photos"))
    return sorted(folder.glob("*.png"))
