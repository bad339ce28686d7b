"""Reading NumPy array files defensively, and checking output paths before any work starts.

:func:`read_npy` and :class:`NpzArchive` read ``.npy`` files and ``.npz`` archives (never
pickles) in two steps: first the ``.npy`` header of an array (its shape and dtype, from
``numpy.lib.format``), which the caller checks, then the data, only after its size has been
checked against the bytes the file or archive member really holds. A header that lies about
the array's size, a truncated or corrupt file or archive member (including a broken deflate
stream) raises :class:`ArrayFileError`, a :class:`ValueError` whose message names the file and
the array; nothing is allocated for an array before its size is known to be there.

:func:`check_output_file` and :func:`check_output_dir` find an output path that cannot be
written (a missing or read-only folder, a folder where a file is meant, a wrong suffix that
NumPy would silently change) before a command does anything long; they raise
:class:`OutputPathError` naming the option and the path.
"""

import lzma
import math
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

__all__ = ["ArrayFileError", "ArrayLayout", "NpzArchive", "OutputPathError", "check_output_dir",
           "check_output_file", "file_kind", "read_npy"]

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
ZIP_EMPTY_MAGIC = b"PK\x05\x06"          # an archive without members
_CHUNK = 1 << 24                         # bytes read at a time from an archive member
# What reading a corrupt archive member can raise: zipfile's own errors, the decompressors'
# (deflate, bzip2: OSError, lzma), encrypted or unsupported members.
_MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError,
                  RuntimeError, NotImplementedError, ValueError)


class ArrayFileError(ValueError):
    """A ``.npy``/``.npz`` file is unreadable, truncated, corrupt or holds the wrong array."""


class OutputPathError(ValueError):
    """An output path cannot be written; the message names the option and the path."""


@dataclass(frozen=True)
class ArrayLayout:
    """An array's ``.npy`` header: what reading its data will produce."""
    shape: tuple
    dtype: np.dtype
    fortran_order: bool
    header_bytes: int       # offset of the data in the .npy stream

    @property
    def nbytes(self):
        return math.prod(self.shape) * self.dtype.itemsize


def file_kind(path):
    """``"npy"``, ``"npz"`` or None from the first bytes of the file ``path`` (by content, not
    by suffix). Raises :class:`ArrayFileError` for a folder or an unreadable file;
    :class:`FileNotFoundError` (message: the path) when it does not exist."""
    path = Path(path)
    try:
        with open(path, "rb") as file:
            start = file.read(len(NPY_MAGIC))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ArrayFileError(f"{path}: is a folder, not a file") from None
    except OSError as error:
        raise ArrayFileError(f"{path}: cannot read it ({error.strerror or error})") from None
    if start.startswith(NPY_MAGIC):
        return "npy"
    if start.startswith((ZIP_MAGIC, ZIP_EMPTY_MAGIC)):
        return "npz"
    return None


def _read_layout(stream, what):
    """The :class:`ArrayLayout` of the ``.npy`` stream ``stream`` (positioned at its start)."""
    try:
        version = npy_format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = npy_format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran_order, dtype = npy_format.read_array_header_2_0(stream)
        else:
            raise ArrayFileError(f"{what}: unsupported .npy format version "
                                 f"{version[0]}.{version[1]}")
    except ArrayFileError:
        raise
    except (ValueError, TypeError, OverflowError, RecursionError, MemoryError, EOFError) as error:
        raise ArrayFileError(f"{what}: not a valid .npy array header "
                             f"({str(error).splitlines()[0] if str(error) else error!r})") from None
    if any(size < 0 for size in shape):
        raise ArrayFileError(f"{what}: the header declares a negative dimension, shape "
                             f"{list(shape)}")
    if dtype.hasobject:
        raise ArrayFileError(f"{what}: holds Python objects (dtype {dtype}), which are not "
                             "loaded (pickles could run code)")
    return ArrayLayout(tuple(shape), dtype, fortran_order, stream.tell())


def _read_data(stream, layout, available, what, size_known=True):
    """The array of ``layout`` from ``stream`` (positioned after the header), which holds
    ``available`` bytes of data according to the file system (``size_known``) or an archive's
    directory (which may lie: the data is then read in chunks before the array is allocated,
    so that memory follows the bytes that are really there)."""
    if available < layout.nbytes:
        raise ArrayFileError(f"{what}: truncated: the header declares {layout.dtype} "
                             f"{list(layout.shape)} ({layout.nbytes:,} bytes of data), the file "
                             f"holds {max(available, 0):,}")
    if available > layout.nbytes:
        raise ArrayFileError(f"{what}: {available - layout.nbytes:,} bytes after the "
                             f"{layout.dtype} {list(layout.shape)} array its header declares")
    chunks, done = [], 0
    if not size_known:
        while done < layout.nbytes:
            chunk = stream.read(min(layout.nbytes - done, _CHUNK))
            if not chunk:
                break
            chunks.append(chunk)
            done += len(chunk)
        if done < layout.nbytes:
            raise ArrayFileError(f"{what}: truncated: {done:,} of {layout.nbytes:,} bytes of "
                                 "data")
    flat = np.empty(math.prod(layout.shape), dtype=layout.dtype)
    buffer, done = flat.view(np.uint8), 0
    chunks.reverse()
    while chunks:                       # freed as they are copied
        chunk = chunks.pop()
        buffer[done:done + len(chunk)] = np.frombuffer(chunk, np.uint8)
        done += len(chunk)
    while done < layout.nbytes:
        count = stream.readinto(buffer[done:])
        if not count:
            raise ArrayFileError(f"{what}: truncated: {done:,} of {layout.nbytes:,} bytes "
                                 "of data")
        done += count
    if stream.read(1):
        raise ArrayFileError(f"{what}: more data than its header declares")
    return flat.reshape(layout.shape, order="F" if layout.fortran_order else "C")


def read_npy(path, check=None):
    """The array of the ``.npy`` file ``path``. ``check(layout)`` (an :class:`ArrayLayout`)
    runs before any data is read and may raise to refuse the array."""
    path = Path(path)
    kind = file_kind(path)
    if kind != "npy":
        raise ArrayFileError(f"{path}: not a .npy file"
                             + (" (a .npz archive)" if kind == "npz" else ""))
    with open(path, "rb") as stream:
        layout = _read_layout(stream, str(path))
        if check is not None:
            check(layout)
        available = os.fstat(stream.fileno()).st_size - layout.header_bytes
        return _read_data(stream, layout, available, str(path))


class NpzArchive:
    """A ``.npz`` archive opened for checked reading (a context manager).

    :attr:`names` lists its arrays (member names without ``.npy``) without reading anything;
    :meth:`layout` reads one array's header, :meth:`read` its data (checked against the size
    the archive's directory gives and the member's CRC).
    """

    def __init__(self, path):
        self.path = Path(path)
        kind = file_kind(self.path)
        if kind != "npz":
            raise ArrayFileError(f"{self.path}: not a readable .npz archive ("
                                 + ("a single .npy array)" if kind == "npy"
                                    else "not a zip file)"))
        try:
            self._zip = zipfile.ZipFile(self.path)
        except _MEMBER_ERRORS as error:
            raise ArrayFileError(f"{self.path}: not a readable .npz archive (truncated or "
                                 f"corrupt?): {error}") from None
        self._members = {}
        for info in self._zip.infolist():
            name = info.filename[:-len(".npy")] if info.filename.endswith(".npy") \
                else info.filename
            if name in self._members:
                self._zip.close()
                raise ArrayFileError(f"{self.path}: the archive holds {name!r} twice")
            self._members[name] = info

    @property
    def names(self):
        return list(self._members)

    def __contains__(self, name):
        return name in self._members

    def _what(self, name):
        return f"{self.path}: array {name!r}"

    def _open(self, name):
        info = self._members[name]
        if not info.filename.endswith(".npy"):
            raise ArrayFileError(f"{self._what(name)}: not a .npy member")
        return info, self._zip.open(info)

    def layout(self, name):
        """The :class:`ArrayLayout` of array ``name`` (its header only)."""
        try:
            _, stream = self._open(name)
            with stream:
                return _read_layout(stream, self._what(name))
        except ArrayFileError:
            raise
        except _MEMBER_ERRORS as error:
            raise ArrayFileError(f"{self._what(name)} is unreadable (truncated or corrupt "
                                 f"file?): {error}") from None

    def read(self, name, check=None):
        """Array ``name``; ``check(layout)`` runs before its data is read (see :func:`read_npy`)."""
        try:
            info, stream = self._open(name)
            with stream:
                layout = _read_layout(stream, self._what(name))
                if check is not None:
                    check(layout)
                return _read_data(stream, layout, info.file_size - layout.header_bytes,
                                  self._what(name), size_known=False)
        except ArrayFileError:
            raise
        except _MEMBER_ERRORS as error:
            raise ArrayFileError(f"{self._what(name)} is unreadable (truncated or corrupt "
                                 f"file?): {error}") from None

    def close(self):
        self._zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _folder_problem(folder):
    """Why files cannot be created in the existing folder ``folder``, or None. Tries it (an
    unnamed temporary file where the system has them): permissions, read-only file systems
    and root's privileges are then all taken into account."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        return error.strerror or str(error)
    return None


def _existing_ancestor(path):
    for parent in [path, *path.parents]:
        if parent.exists() or parent.is_symlink():
            return parent
    return Path(".")


def check_output_dir(path, option, files=()):
    """Check that the folder ``path`` (option ``option`` of a command) exists or can be
    created, and that files can be written in it; ``files`` (names in it) that already exist
    must be writable files. Creates nothing. Raises :class:`OutputPathError`."""
    path = Path(path)
    where = f"{option} {path}"
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{where}: is a file, not a folder")
    folder = path if path.is_dir() else _existing_ancestor(path)
    if not folder.is_dir():
        raise OutputPathError(f"{where}: {folder} is a file, so the folder cannot be created")
    problem = _folder_problem(folder)
    if problem:
        raise OutputPathError(f"{where}: cannot write in {folder} ({problem})")
    for name in files:
        target = path / name
        if target.is_dir():
            raise OutputPathError(f"{where}: {target} is a folder, where a file is written")
        if target.exists() and not os.access(target, os.W_OK):
            raise OutputPathError(f"{where}: {target} exists and is read-only")
    return path


def check_output_file(path, option, suffix=None):
    """Check that the file ``path`` (option ``option``) can be written: its folder exists and
    is writable, it is not a folder or a read-only file, and it ends in ``suffix`` (NumPy's
    ``save``/``savez`` would otherwise append one and write another file). Creates nothing.
    Raises :class:`OutputPathError`."""
    path = Path(path)
    where = f"{option} {path}"
    if path.is_dir():
        raise OutputPathError(f"{where}: is a folder; give a file name")
    if suffix is not None and path.suffix != suffix:
        raise OutputPathError(f"{where}: the file name must end in {suffix}")
    folder = path.parent
    if not folder.is_dir():
        raise OutputPathError(f"{where}: the folder {folder} does not exist"
                              if not folder.exists() else f"{where}: {folder} is not a folder")
    problem = _folder_problem(folder)
    if problem:
        raise OutputPathError(f"{where}: cannot write in {folder} ({problem})")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputPathError(f"{where}: the file exists and is read-only")
    return path
