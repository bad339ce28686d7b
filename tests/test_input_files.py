"""The files the golden model reads: image files of every Pillow mode, pixel arrays (.npy/.npz)
and model files with lying or corrupt headers, and the command line's file options."""

import io
import re
import time
import tracemalloc
import zipfile
from importlib import resources

import numpy as np
import pytest
from numpy.lib import format as npy_format
from PIL import Image, ImageOps

from benchmarks.compression import main as compression_main
from fracbnn_golden import FracBNN, ModelFormatError
from fracbnn_golden.__main__ import main
from fracbnn_golden.files import (
    ArrayFileError,
    NpzArchive,
    OutputPathError,
    check_output_dir,
    check_output_file,
    read_npy,
)
from fracbnn_golden.images import load_image, load_pixels

MODEL = resources.files("fracbnn_golden") / "data" / "fracbnn_cifar10.npz"


def _expected_eight_bits(values, maximum):
    """round(value * 255 / maximum), halves up."""
    return ((values.astype(np.int64) * 510 + maximum) // (2 * maximum)).astype(np.uint8)


def _ramp(dtype, top):
    """A 32x32 ramp from 0 to ``top`` (no resizing: the loaded pixels are the scaled values)."""
    return (np.arange(1024).reshape(32, 32) * (top / 1023)).astype(dtype)


# ---- item 1: every mode with its real range --------------------------------------------------

@pytest.mark.parametrize("name, values, maximum", [
    ("grey16.png", _ramp(np.uint16, 65535), 65535),
    ("grey16.tif", _ramp(np.uint16, 65535), 65535),
    ("int32.tif", _ramp(np.int32, 2**31 - 1), 2**31 - 1),      # signed: 0..largest positive
    ("grey16.pgm", _ramp(np.uint16, 65535), 65535),            # Pillow reads it as mode I
])
def test_high_bit_depth_images_are_scaled_from_their_range(tmp_path, name, values, maximum):
    path = tmp_path / name
    Image.fromarray(values).save(path)
    pixels = load_image(path)
    expected = _expected_eight_bits(values, maximum)
    assert pixels.shape == (3, 32, 32)
    for colour in range(3):
        np.testing.assert_array_equal(pixels[colour], expected)
    assert pixels.min() == 0 and pixels.max() == 255         # not blank


def test_unsigned_32_bit_tiff_uses_the_full_range(tmp_path):
    values = np.tile(np.array([0, 1 << 31, 0xFFFF_FFFF, 1 << 24], np.uint32), (32, 8))
    path = tmp_path / "uint32.tif"
    Image.fromarray(values.view(np.int32), "I").save(path)
    data = bytearray(path.read_bytes())
    # Pillow writes mode I as signed (SampleFormat 2); make the tag say unsigned (1).
    tag = data.find(bytes([0x53, 0x01, 0x03, 0x00, 0x01, 0, 0, 0, 0x02, 0x00]))
    assert tag > 0
    data[tag + 8] = 1
    path.write_bytes(bytes(data))
    np.testing.assert_array_equal(load_image(path)[0], _expected_eight_bits(values, 2**32 - 1))


def test_float_images_are_scaled_from_zero_to_one(tmp_path):
    values = (np.arange(1024).reshape(32, 32) / 1023).astype(np.float32)
    path = tmp_path / "float.tif"
    Image.fromarray(values).save(path)
    expected = np.floor(values.astype(np.float64) * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(load_image(path)[1], expected)


@pytest.mark.parametrize("values, message", [
    (np.full((32, 32), 2.5, np.float32), r"must lie in 0\.\.1 \(found 2\.5\.\.2\.5\)"),
    (np.full((32, 32), np.nan, np.float32), "NaN or infinity"),
    (np.full((32, 32), -5, np.int32), "negative values"),
])
def test_values_without_a_brightness_are_refused(tmp_path, values, message):
    path = tmp_path / "odd.tif"
    Image.fromarray(values).save(path)
    with pytest.raises(ValueError, match=f"odd.tif: .*{message}"):
        load_image(path)


@pytest.mark.parametrize("mode, colour, rgb", [
    ("1", 1, (255, 255, 255)),
    ("L", 100, (100, 100, 100)),
    ("P", 7, None),
    ("CMYK", (0, 255, 255, 0), (255, 0, 0)),
    ("YCbCr", (76, 85, 255), None),
    ("LAB", (128, 128, 128), (119, 119, 119)),    # a real colour conversion, not a copy
    ("LA", (100, 0), (255, 255, 255)),            # fully transparent: white
    ("RGBA", (10, 20, 30, 255), (10, 20, 30)),
    ("PA", (7, 255), None),
    # Modes no file format opens as; they reach the loader through a stand-in Image.open.
    ("HSV", (0, 255, 255), (255, 0, 0)),
    ("RGBa", (10, 20, 30, 255), (10, 20, 30)),
    ("La", (100, 255), (100, 100, 100)),
    ("RGBX", (10, 20, 30, 0), (10, 20, 30)),
])
def test_every_eight_bit_mode_loads(tmp_path, monkeypatch, mode, colour, rgb):
    image = Image.new(mode, (32, 32), colour)
    path = tmp_path / "image.tif"
    try:
        image.save(path)
        stored = Image.open(path).mode == mode
    except (OSError, ValueError, KeyError):
        stored = False
    if not stored:
        monkeypatch.setattr(Image, "open", lambda path: image.copy())
    pixels = load_image(path)
    expected = rgb or image.convert("RGB").getpixel((0, 0))
    assert pixels[:, 0, 0].tolist() == list(expected)
    assert (pixels == pixels[:, :1, :1]).all()


def test_an_unknown_mode_is_refused_by_name(tmp_path, monkeypatch):
    image = Image.new("L", (32, 32))
    monkeypatch.setattr(image, "_mode", "XYZ")
    monkeypatch.setattr(Image, "open", lambda path: image)
    monkeypatch.setattr(ImageOps, "exif_transpose", lambda image: image)
    with pytest.raises(ValueError, match="image.xyz: Pillow image mode 'XYZ' is not supported"):
        load_image(tmp_path / "image.xyz")


def test_exif_orientation_is_applied(tmp_path):
    half = np.zeros((32, 32, 3), np.uint8)
    half[:, 16:] = 255                                  # left black, right white
    image = Image.fromarray(half)
    exif = image.getexif()
    exif[0x0112] = 3                                    # rotated 180 degrees
    for name in ("rotated.png", "rotated.jpg"):
        image.save(tmp_path / name, exif=exif, **({"quality": 100} if "jpg" in name else {}))
        pixels = load_image(tmp_path / name)
        assert (pixels[:, :, :8] > 240).all() and (pixels[:, :, -8:] < 15).all(), name


def test_decompression_bombs_are_refused_by_name(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    for side in (40, 100):          # past the limit Pillow warns; past twice it refuses
        path = tmp_path / f"bomb{side}.png"
        Image.new("RGB", (side, side)).save(path)
        with pytest.raises(ValueError, match=f"bomb{side}.png: .*more than 1,000 pixels"):
            load_image(path)


@pytest.mark.parametrize("name", ["photo.png", "photo.jpg"])
def test_truncated_images_name_the_file(tmp_path, capsys, name):
    path = tmp_path / name
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:400])
    with pytest.raises(ValueError, match=f"{name}: cannot read the image"):
        load_image(path)
    assert main(["classify", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: ") and err.count("\n") == 1


def test_classify_command_on_a_sixteen_bit_image(tmp_path, capsys):
    path = tmp_path / "grey16.png"
    Image.fromarray(_ramp(np.uint16, 65535)).save(path)
    blank = tmp_path / "blank.png"
    Image.new("L", (32, 32), 255).save(blank)
    assert main(["classify", str(path), str(blank)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[2:] != lines[2].split()[2:]        # not classified as blank


def test_a_folder_is_not_an_image(tmp_path):
    with pytest.raises(ValueError, match="is a folder"):
        load_image(tmp_path)
    with pytest.raises(FileNotFoundError, match="absent.png: no such file"):
        load_image(tmp_path / "absent.png")


# ---- pixel arrays: .npy and .npz through one loader ------------------------------------------

def _npy_bytes(shape, descr="|u1", data=b""):
    stream = io.BytesIO()
    npy_format.write_array_header_1_0(stream, {"shape": shape, "fortran_order": False,
                                               "descr": descr})
    return stream.getvalue() + data


def _npz(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_pixels_from_npy_and_npz(tmp_path, public_vectors):
    pixels = public_vectors["pixels"][:3]
    np.save(tmp_path / "in.npy", pixels)
    np.savez_compressed(tmp_path / "in.npz", pixels=pixels, logits=public_vectors["logits"][:3])
    np.testing.assert_array_equal(load_pixels(tmp_path / "in.npy"), pixels)
    np.testing.assert_array_equal(load_pixels(tmp_path / "in.npz"), pixels)
    np.save(tmp_path / "fortran.npy", np.asfortranarray(pixels))
    np.testing.assert_array_equal(load_pixels(tmp_path / "fortran.npy"), pixels)


@pytest.mark.parametrize("make, message", [
    # A header declaring 48 GiB over a few bytes: refused before anything is allocated.
    (lambda p: p.write_bytes(_npy_bytes((1 << 24, 3, 32, 32), data=b"\0" * 10)), "truncated"),
    (lambda p: p.write_bytes(_npy_bytes((1, 3, 32, 32), data=b"\0" * 3073)), "bytes after"),
    (lambda p: p.write_bytes(_npy_bytes((-1, 3, 32, 32))), "negative dimension"),
    (lambda p: p.write_bytes(_npy_bytes((1, 3, 32, 32), descr="|O")), "Python objects"),
    (lambda p: p.write_bytes(_npy_bytes((2, 3, 32, 32), descr="<f4")), "uint8"),
    (lambda p: p.write_bytes(_npy_bytes((2, 32, 32, 3))), r"\[N, 3, 32, 32\]"),
    (lambda p: p.write_bytes(b"\x93NUMPY\x01\x00\xff\xff{'broken"), "not a valid .npy"),
    (lambda p: p.write_text("hello"), "neither a .npy array nor a .npz archive"),
    (lambda p: _npz(p, {"logits.npy": _npy_bytes((0, 10), "<i2")}), "no 'pixels' array"),
    (lambda p: _npz(p, {"pixels.npy": _npy_bytes((1 << 30, 3, 32, 32))}), "truncated"),
    (lambda p: p.write_bytes(b"PK\x03\x04 truncated zip"), "not a readable .npz"),
])
def test_bad_pixel_files_are_refused(tmp_path, make, message):
    path = tmp_path / "pixels.bin"
    make(path)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=message) as error:
            load_pixels(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(error.value)
    assert peak < 16 << 20


def test_a_lying_archive_directory_is_read_within_the_real_data(tmp_path):
    """The .npy header and the zip directory both claim 1 GiB; the member holds 100 bytes."""
    path = _npz(tmp_path / "lying.npz", {"pixels.npy": _npy_bytes((1 << 18, 4, 32, 32),
                                                                   data=bytes(100))},
                zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    header_len = len(_npy_bytes((1 << 18, 4, 32, 32)))
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(signature) + offset           # the uncompressed-size field
        data[at:at + 4] = (header_len + (1 << 30)).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo("pixels.npy").file_size > 1 << 30
    tracemalloc.start()
    try:
        with pytest.raises(ArrayFileError, match="lying.npz: array 'pixels'"):
            NpzArchive(path).read("pixels")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20


def test_logits_command_reads_npz_and_checks_out_first(tmp_path, capsys, public_vectors):
    pixels = public_vectors["pixels"][:2]
    np.savez(tmp_path / "in.npz", pixels=pixels)
    assert main(["logits", "--pixels", str(tmp_path / "in.npz"),
                 "--out", str(tmp_path / "out.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), public_vectors["logits"][:2])
    assert f"wrote {tmp_path / 'out.npy'}" in capsys.readouterr().out


@pytest.mark.parametrize("out, message", [
    (".", "is a folder"),
    ("out", "must end in .npy"),
    ("out.npz", "must end in .npy"),
    ("missing/out.npy", "folder .*missing does not exist"),
])
def test_logits_command_refuses_bad_out_before_work(tmp_path, capsys, monkeypatch, out,
                                                     message):
    np.save(tmp_path / "in.npy", np.zeros((1, 3, 32, 32), np.uint8))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(FracBNN, "logits", lambda *a, **k: pytest.fail("ran the model"))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert main(["logits", "--pixels", "in.npy", "--out", out]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --out {out}: ") and err.count("\n") == 1
    assert re.search(message, err), err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_output_checks(tmp_path, read_only_folder):
    with pytest.raises(OutputPathError, match="cannot write in"):
        check_output_file(read_only_folder / "out.npy", "--out", ".npy")
    with pytest.raises(OutputPathError, match="cannot write in"):
        check_output_dir(read_only_folder / "new" / "deeper", "--out")
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputPathError, match="is a file, not a folder"):
        check_output_dir(tmp_path / "file", "--out")
    with pytest.raises(OutputPathError, match="is a file, so the folder cannot be created"):
        check_output_dir(tmp_path / "file" / "sub", "--out")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "result.json").mkdir()
    with pytest.raises(OutputPathError, match="result.json is a folder"):
        check_output_dir(tmp_path / "out", "--out", files=["result.json"])
    assert check_output_dir(tmp_path / "new" / "deeper", "--out") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()              # nothing created


# ---- model files: headers first, then data ---------------------------------------------------

@pytest.fixture(scope="module")
def model_members():
    with zipfile.ZipFile(MODEL) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _model_peak(path):
    """Load the model file ``path``; returns (error, peak bytes allocated)."""
    tracemalloc.start()
    try:
        with pytest.raises(ModelFormatError) as error:
            FracBNN.from_npz(path)
        return error.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_an_extra_huge_array_is_refused_by_name_before_reading(tmp_path, model_members):
    path = tmp_path / "model.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in model_members.items():
            archive.writestr(name, data)
        with archive.open("extra.npy", "w", force_zip64=True) as member:   # 1 GiB of zeros
            member.write(_npy_bytes((1 << 30,)))
            for _ in range(64):
                member.write(bytes(1 << 24))
    assert path.stat().st_size < 8 << 20
    started = time.monotonic()
    error, peak = _model_peak(path)
    assert "unexpected array 'extra'" in str(error)
    assert peak < 16 << 20 and time.monotonic() - started < 5


@pytest.mark.parametrize("member, data, message", [
    # Shapes and dtypes come from the headers: a lying one is refused before its data is read.
    ("linear.bias.npy", _npy_bytes((1 << 30,), "<i2"), r"'linear.bias' has shape \[1073741824\]"),
    ("linear.bias.npy", _npy_bytes((10,), "<i2", b"\0" * 8), "truncated"),
    ("linear.bias.npy", _npy_bytes((10,), "<i2", b"\0" * 30), "bytes after"),
    ("linear.bias.npy", _npy_bytes((10,), "|O", b"\0" * 80), "Python objects"),
    ("linear.bias.npy", _npy_bytes((10,), "<f8", b"\0" * 80), "has dtype float64"),
    ("linear.bias.npy", b"not an array", "not a valid .npy array header"),
])
def test_lying_member_headers(tmp_path, model_members, member, data, message):
    path = _npz(tmp_path / "model.npz", {**model_members, member: data})
    error, peak = _model_peak(path)
    assert re.search(message, str(error)), str(error)
    assert str(path) in str(error) and peak < 16 << 20


def test_corrupt_deflate_stream_is_a_model_format_error(tmp_path, model_members):
    path = _npz(tmp_path / "model.npz", model_members, zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    start = data.find(b"layer3_2.conv2.weight.npy") + len("layer3_2.conv2.weight.npy")
    data[start + 40:start + 200] = bytes(range(160))      # inside the compressed stream
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match="layer3_2.conv2.weight"):
        FracBNN.from_npz(path)


def test_duplicate_members_are_refused(tmp_path, model_members):
    path = _npz(tmp_path / "model.npz", model_members)
    with zipfile.ZipFile(path, "a") as archive, pytest.warns(UserWarning, match="Duplicate"):
        archive.writestr("bn1.bias.npy", model_members["bn1.bias.npy"])
    with pytest.raises(ModelFormatError, match="'bn1.bias' twice"):
        FracBNN.from_npz(path)


@pytest.mark.parametrize("content, message", [
    (b"hello, not a model", r"not a readable .npz archive \(not a zip file\)"),
    (_npy_bytes((3,), data=b"abc"), r"a single .npy array"),
])
def test_not_a_model_file_is_described_plainly(tmp_path, content, message):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    with pytest.raises(ModelFormatError, match=message) as error:
        FracBNN.from_npz(path)
    assert "pickle" not in str(error.value)
    with pytest.raises(ModelFormatError, match="is a folder"):
        FracBNN.from_npz(tmp_path)


def test_read_npy_checks_before_reading(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.arange(6, dtype=np.int32).reshape(2, 3))
    seen = []
    np.testing.assert_array_equal(read_npy(path, seen.append), np.arange(6).reshape(2, 3))
    assert seen[0].shape == (2, 3) and seen[0].dtype == np.int32
    with pytest.raises(ArrayFileError, match="a .npz archive"):
        read_npy(_npz(tmp_path / "b.npz", {"x.npy": _npy_bytes((0,))}))


# ---- the compression report's options (python -m benchmarks.compression) ------------------------

@pytest.mark.parametrize("option, value", [
    ("--block-channels", "100000000000000000000"),
    ("--block-channels", "1e20"),
    ("--block-channels", str(2**32)),
    ("--block-channels", "0"),
    ("--max-length", "2.5"),
    ("--max-length", "33"),
])
def test_compress_report_options_are_checked(capsys, option, value):
    with pytest.raises(SystemExit) as exit_:
        compression_main([option, value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: " in err and "Traceback" not in err
