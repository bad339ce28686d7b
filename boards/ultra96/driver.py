"""Host driver for the AXI4-Lite accelerator (runs on the Ultra96's ARM cores, or against the RTL
in simulation).

Register access goes through a bus backend with four methods — ``read32(offset)``,
``write32(offset, value)``, ``now()`` (seconds) and ``sleep(seconds)`` — so the same
:class:`Driver` code runs on the board and in a cocotb testbench:

* :class:`DevMemBus`: ``mmap`` of ``/dev/mem`` (needs root).
* :class:`PynqBus`: PYNQ's ``MMIO`` (on a PYNQ image; PYNQ maps the memory for you).
* :class:`boards.ultra96.sim_bus.CocotbAxiLiteBus`: cocotbext-axi's ``AxiLiteMaster`` in an RTL
  simulation, the driver running in a ``cocotb.task.bridge`` thread.

Batches (:meth:`Driver.classify_batch`) also need physically contiguous memory the accelerator's
AXI4 master reads and writes, from a memory backend with ``allocate(nbytes)`` returning a
:class:`DmaBuffer`:

* :class:`PynqMemory`: PYNQ's ``allocate`` (the CMA region of a PYNQ image).
* :class:`UdmabufMemory`: a region of the ``u-dma-buf`` kernel module on a plain Linux image
  (``/dev/udmabufN`` mapped cached, its physical address from sysfs, the caches synced through
  its sysfs controls).
* :class:`ArrayMemory`: a NumPy array standing in for physical memory: the simulation's
  ``AxiRam`` (:mod:`boards.ultra96.sim_bus`) and the host-side stand-in
  (:mod:`boards.ultra96.standin`).

Offsets and bit positions come from :mod:`boards.ultra96.registers`. On the board an access the
interface refuses (SLVERR) is a synchronous external abort: Linux kills the process with SIGBUS
("Bus error"); the driver checks the state first so that it never makes one.
"""

import math
import mmap
import numbers
import os
import re
import time
from pathlib import Path

import numpy as np

from .block_design import BASE_ADDRESS, HPM0_DATA_WIDTH
from .registers import (
    APERTURE,
    DMA_ADDR_WIDTH,
    DST_ALIGN,
    ID_VALUE,
    IMAGE_BYTES,
    MAX_COUNT,
    PIXELS,
    RECORD_BYTES,
    RECORD_FIELDS,
    SRC_ALIGN,
    VERSION_VALUE,
    field,
    register,
)

__all__ = [
    "DEFAULT_BASE", "RECORD_DTYPE", "AcceleratorFault", "AcceleratorTimeout", "ArrayMemory",
    "BusBackend", "BusError", "DevMemBus", "DmaBuffer", "Driver", "DriverError", "NotLoaded",
    "PynqBus", "PynqMemory", "UdmabufMemory", "check_batch_buffers", "check_pixels_batch",
    "check_pynq_hwh_parser", "check_window", "default_bus", "hpm0_slcr_bus", "pack_image",
    "set_hpm0_width",
]

# Where the block design maps the interface: the start of the M_AXI_HPM0_FPD window.
DEFAULT_BASE = BASE_ADDRESS
# The Zynq UltraScale+'s physical addresses are 40 bits wide.
PHYSICAL_ADDRESS_LIMIT = 1 << 40
IMAGE_SHAPE = (3, 32, 32)
# A result record in memory (boards.ultra96.registers.RECORD_FIELDS).
RECORD_DTYPE = np.dtype([(name, kind, (count,)) if count > 1 else (name, kind)
                         for name, kind, count in RECORD_FIELDS])
if RECORD_DTYPE.itemsize != RECORD_BYTES:
    raise AssertionError(f"RECORD_FIELDS make {RECORD_DTYPE.itemsize} bytes, not {RECORD_BYTES}")
# Physical buffers are allocated page-aligned.
PAGE = 4096


class DriverError(RuntimeError):
    """The accelerator cannot be used as asked."""


class BusError(DriverError):
    """A register access was answered with an error response (SLVERR/DECERR)."""


class NotLoaded(DriverError):
    """The identification register does not hold the accelerator's ID."""


class AcceleratorTimeout(DriverError, TimeoutError):
    """No result within the timeout."""


class AcceleratorFault(DriverError):
    """The accelerator reports an error (``STATUS.ERROR``)."""


class BusBackend:
    """The interface of a bus backend; ``now``/``sleep`` default to wall-clock time."""

    def read32(self, offset):
        raise NotImplementedError

    def write32(self, offset, value):
        raise NotImplementedError

    def now(self):
        return time.monotonic()

    def sleep(self, seconds):
        if seconds > 0:
            time.sleep(seconds)

    def close(self):
        pass


class DevMemBus(BusBackend):
    """The interface's window mapped from ``/dev/mem`` (uncached: opened with ``O_SYNC``)."""

    def __init__(self, base=DEFAULT_BASE, size=APERTURE, path="/dev/mem"):
        check_window(base, size)
        if base % mmap.PAGESIZE or size % mmap.PAGESIZE:
            raise DriverError(f"base 0x{base:X} and size 0x{size:X} must be multiples of the "
                              f"page size ({mmap.PAGESIZE})")
        try:
            fd = os.open(path, os.O_RDWR | os.O_SYNC)
        except PermissionError:
            raise DriverError(f"cannot open {path}: permission denied; run as root "
                              f"(e.g. sudo), or use PYNQ (--bus pynq)") from None
        except FileNotFoundError:
            raise DriverError(f"{path} does not exist: this is not the board (or the kernel "
                              f"has no /dev/mem)") from None
        except IsADirectoryError:
            raise DriverError(f"cannot open {path}: it is a folder, not the physical memory "
                              "device (/dev/mem)") from None
        except OSError as error:
            raise DriverError(f"cannot open {path}: {error.strerror or error}") from None
        try:
            self._map = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE,
                                  offset=base)
        except (OSError, ValueError, OverflowError) as error:
            raise DriverError(f"cannot map 0x{base:X}..0x{base + size - 1:X} from {path}: "
                              f"{error}") from None
        finally:
            os.close(fd)
        # Native 32-bit words: every access is one 32-bit load or store.
        self._words = memoryview(self._map).cast("I")

    def read32(self, offset):
        return self._words[offset >> 2]

    def write32(self, offset, value):
        self._words[offset >> 2] = value & 0xFFFF_FFFF

    def close(self):
        self._words.release()
        self._map.close()


class PynqBus(BusBackend):
    """PYNQ's ``MMIO`` over the interface's window; with ``irq_pin`` (the block design's
    interrupt port, ``"irq"``, known to PYNQ once the overlay is loaded) also
    ``wait_interrupt`` through PYNQ's ``Interrupt``. :attr:`interrupt_problem` says why there is
    no interrupt when PYNQ refused the pin (the driver then polls)."""

    def __init__(self, base=DEFAULT_BASE, size=APERTURE, irq_pin=None):
        check_window(base, size)
        try:
            from pynq import MMIO
        except ImportError:
            raise DriverError("PYNQ is not installed (pip install pynq on the board), or use "
                              "--bus devmem") from None
        self._mmio = MMIO(base, size)
        self._interrupt, self.interrupt_problem = None, None
        if irq_pin is not None:
            try:
                from pynq import Interrupt
                self._interrupt = Interrupt(irq_pin)
            except Exception as error:      # PYNQ raises ValueError/KeyError/RuntimeError here
                self.interrupt_problem = f"PYNQ's Interrupt({irq_pin!r}): {error}"
        if self._interrupt is None:
            self.wait_interrupt = None

    def wait_interrupt(self, seconds):
        """Wait for the interrupt, at most ``seconds`` (the driver then checks IRQ_STATUS)."""
        import asyncio

        async def wait():
            try:
                await asyncio.wait_for(self._interrupt.wait(), seconds)
            except TimeoutError:
                pass
        asyncio.run(wait())

    def read32(self, offset):
        return int(self._mmio.read(offset))

    def write32(self, offset, value):
        self._mmio.write(offset, value & 0xFFFF_FFFF)


class DmaBuffer:
    """``nbytes`` of physically contiguous memory at physical ``address``, seen by the host as
    ``array`` (uint8). ``flush`` makes the host's writes visible to the accelerator,
    ``invalidate`` the accelerator's writes to the host (no-ops where memory is coherent or
    uncached); ``free`` gives the memory back."""

    def __init__(self, address, array, flush=None, invalidate=None, free=None):
        self.address, self.array = address, array
        self._flush, self._invalidate, self._free = flush, invalidate, free

    @property
    def nbytes(self):
        return self.array.nbytes

    def flush(self):
        if self._flush is not None:
            self._flush()

    def invalidate(self):
        if self._invalidate is not None:
            self._invalidate()

    def free(self):
        if self._free is not None:
            self._free()


class ArrayMemory:
    """Physical memory stood in for by ``array`` (uint8, writable) at physical address
    ``base``: buffers are carved from it page-aligned, each followed by a ``guard``-byte gap
    (so a test can check that nothing is written between buffers)."""

    def __init__(self, array, base=0, guard=PAGE):
        if not isinstance(array, np.ndarray) or array.dtype != np.uint8 or array.ndim != 1:
            raise TypeError(f"the memory must be a 1-D uint8 NumPy array, not {array!r}")
        self.array, self.base, self.guard = array, base, guard
        self.next = 0

    def allocate(self, nbytes):
        start = -(-self.next // PAGE) * PAGE
        if start + nbytes > len(self.array):
            raise DriverError(f"cannot allocate {nbytes} bytes: the memory has "
                              f"{len(self.array) - start} left")
        self.next = start + nbytes + self.guard
        return DmaBuffer(self.base + start, self.array[start:start + nbytes])


class PynqMemory:
    """PYNQ's ``allocate``: physically contiguous buffers from the CMA region (cached; the
    buffers' ``flush``/``invalidate`` keep the caches and the accelerator's view in step)."""

    def __init__(self):
        try:
            from pynq import allocate
        except ImportError:
            raise DriverError("batches need PYNQ's allocate (pip install pynq on the board) "
                              "for physically contiguous buffers") from None
        self._allocate = allocate

    def allocate(self, nbytes):
        buffer = self._allocate(shape=(nbytes,), dtype=np.uint8)
        # PYNQ 3 names it device_address; PYNQ 2 physical_address.
        address = getattr(buffer, "device_address", None)
        if address is None:
            address = buffer.physical_address
        return DmaBuffer(int(address), buffer, buffer.flush, buffer.invalidate,
                         buffer.freebuffer)


# Where the u-dma-buf module describes its regions (u-dma-buf 3 and later; "udmabuf" before).
UDMABUF_CLASSES = ("/sys/class/u-dma-buf", "/sys/class/udmabuf")
# sync_direction values of u-dma-buf (the kernel's enum dma_data_direction).
DMA_TO_DEVICE, DMA_FROM_DEVICE = 1, 2


class UdmabufMemory:
    """A ``u-dma-buf`` region (``name``, e.g. ``udmabuf0``) as the batches' memory, on a Linux
    image without PYNQ. The region is mapped cached from ``/dev/<name>``; buffers are carved
    from it page-aligned (:class:`ArrayMemory`), and each buffer's ``flush``/``invalidate``
    writes its range to the region's ``sync_offset``/``sync_size``/``sync_direction`` and then
    ``sync_for_device``/``sync_for_cpu``, which clean or invalidate exactly those cache lines
    (nothing where the region is ``dma_coherent``). :attr:`region` is the mapped region (an
    :class:`ArrayMemory` at its physical address). ``sysfs`` and ``dev`` are the folders to look
    in (for tests)."""

    def __init__(self, name="udmabuf0", sysfs=UDMABUF_CLASSES, dev="/dev"):
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise DriverError(f"--udmabuf {name!r}: not a device name (e.g. udmabuf0)")
        folders = [Path(root) / name for root in ([sysfs] if isinstance(sysfs, str) else sysfs)]
        self.sysfs = next((folder for folder in folders if (folder / "phys_addr").is_file()),
                          None)
        if self.sysfs is None:
            raise DriverError(f"--udmabuf {name}: no such u-dma-buf region (looked for "
                              f"{' and '.join(str(f / 'phys_addr') for f in folders)}); load "
                              f"the module with one, e.g. modprobe u-dma-buf udmabuf0=33554432")
        address, size = self._attribute("phys_addr", 16), self._attribute("size", 10)
        self.coherent = ((self.sysfs / "dma_coherent").is_file()
                         and self._attribute("dma_coherent", 10) == 1)
        path = Path(dev) / name
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError as error:
            raise DriverError(f"cannot open {path}: {error.strerror or error}"
                              + ("; run as root or give the device file to your user (a udev "
                                 "rule)" if isinstance(error, PermissionError) else "")) from None
        try:
            self._map = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except (OSError, ValueError) as error:
            raise DriverError(f"cannot map the {size} bytes of {path}: {error}") from None
        finally:
            os.close(fd)
        self.region = ArrayMemory(np.frombuffer(self._map, np.uint8), base=address)

    def _attribute(self, name, base):
        text = (self.sysfs / name).read_text().strip()
        try:
            return int(text, base)
        except ValueError:
            raise DriverError(f"{self.sysfs / name}: {text!r} is not a number") from None

    def _sync(self, offset, nbytes, direction, owner):
        if self.coherent:
            return
        for name, value in (("sync_offset", offset), ("sync_size", nbytes),
                            ("sync_direction", direction), (owner, 1)):
            try:
                (self.sysfs / name).write_text(str(value))
            except OSError as error:
                raise DriverError(f"cannot write {self.sysfs / name}: "
                                  f"{error.strerror or error}") from None

    def allocate(self, nbytes):
        buffer = self.region.allocate(nbytes)
        offset = buffer.address - self.region.base
        return DmaBuffer(
            buffer.address, buffer.array,
            flush=lambda: self._sync(offset, nbytes, DMA_TO_DEVICE, "sync_for_device"),
            invalidate=lambda: self._sync(offset, nbytes, DMA_FROM_DEVICE, "sync_for_cpu"))


def check_pixels_batch(pixels):
    """``pixels`` as uint8 ``[N, 3, 32, 32]`` (C order), N from 1 to ``MAX_COUNT``; a single
    ``[3, 32, 32]`` image becomes a batch of one. ``ValueError`` names what is wrong."""
    pixels = np.asarray(pixels)
    if pixels.shape == IMAGE_SHAPE:
        pixels = pixels[None]
    if pixels.ndim != 4 or pixels.shape[1:] != IMAGE_SHAPE or pixels.dtype != np.uint8:
        raise ValueError(f"a batch must be uint8 [N, {', '.join(map(str, IMAGE_SHAPE))}], not "
                         f"{pixels.dtype} {list(pixels.shape)}")
    if not 1 <= len(pixels) <= MAX_COUNT:
        raise ValueError(f"a batch has 1 to {MAX_COUNT} images, not {len(pixels)}")
    return pixels


def check_batch_buffers(count, src, dst):
    """Refuse (:class:`DriverError`, saying why) what ``START_BATCH`` would answer with SLVERR:
    ``count`` images at physical address ``src``, their records at ``dst``."""
    if not 1 <= count <= MAX_COUNT:
        raise DriverError(f"COUNT {count}: a batch has 1 to {MAX_COUNT} images")
    if src % SRC_ALIGN:
        raise DriverError(f"the image buffer at 0x{src:X} is not {SRC_ALIGN}-byte aligned")
    if dst % DST_ALIGN:
        raise DriverError(f"the result buffer at 0x{dst:X} is not {DST_ALIGN}-byte aligned")
    src_end, dst_end = src + count * IMAGE_BYTES, dst + count * RECORD_BYTES
    for name, start, end in (("image", src, src_end), ("result", dst, dst_end)):
        if start < 0 or end > 1 << DMA_ADDR_WIDTH:
            raise DriverError(f"the {name} buffer 0x{start:X}..0x{end - 1:X} passes the end of "
                              f"the {DMA_ADDR_WIDTH}-bit address space")
    if src < dst_end and dst < src_end:
        raise DriverError(f"the image buffer 0x{src:X}..0x{src_end - 1:X} and the result buffer "
                          f"0x{dst:X}..0x{dst_end - 1:X} overlap")


def check_window(base, size=APERTURE):
    """Refuse a register window ``base .. base + size - 1`` outside the physical address space
    (:class:`DriverError`), before anything is opened or mapped."""
    if isinstance(base, bool) or not isinstance(base, numbers.Integral):
        raise DriverError(f"the base address must be an integer, not {base!r}")
    if base < 0:
        raise DriverError(f"base address -0x{-base:X} is negative")
    if base + size > PHYSICAL_ADDRESS_LIMIT:
        raise DriverError(f"base address 0x{base:X}: the window 0x{base:X}..0x{base + size - 1:X} "
                          f"lies beyond the 40-bit physical address space (the interface is at "
                          f"0x{DEFAULT_BASE:X})")


# The PS side of M_AXI_HPM0_FPD has its own data-width setting: field DW_SS0_SEL, bits 9:8, of
# FPD_SLCR's AFI_FS register at 0xFD615000 (0 = 32, 1 = 64, 2 = 128 bits; the Zynq UltraScale+
# register reference, UG1087, and PYNQ's EmbeddedDevice.set_axi_port_width). The boot image's
# psu_init sets it for the design the boot image was made with; PYNQ's Overlay sets it from the
# .hwh; fpgautil and fpga_manager leave it alone. When it is wider than the block design's
# HPM0_DATA_WIDTH, 32-bit accesses at offsets 4, 8 and 12 land on byte lanes the PL does not see.
AFI_FS = 0xFD61_5000
HPM0_WIDTH_LSB = 8
HPM0_WIDTH_CODES = {32: 0, 64: 1, 128: 2}
# M_AXI_HPM0_FPD's 256 MiB window in the low 4 GiB (where the width matters to this driver).
HPM0_FPD_WINDOW = (0xA000_0000, 0xB000_0000)
# PYNQ 3 reads the .hwh with pynqmetadata. Before 0.1.5 its parser raises KeyError on an address
# range whose target is a port of the block design rather than a cell, as this design's register
# interface (the port M_AXI) is; PYNQ 3.0.0/3.0.1 images ship such a version. PYNQ 2.x's own
# parser skips such ranges.
PYNQMETADATA_FIXED = (0, 1, 5)


def hpm0_slcr_bus(pynq=False, path="/dev/mem"):
    """A bus over the page of FPD_SLCR that holds AFI_FS: PYNQ's MMIO, or ``path``."""
    page = AFI_FS - AFI_FS % mmap.PAGESIZE
    return PynqBus(page, mmap.PAGESIZE) if pynq else DevMemBus(page, mmap.PAGESIZE, path=path)


def set_hpm0_width(slcr, width=HPM0_DATA_WIDTH):
    """Make M_AXI_HPM0_FPD ``width`` bits wide on the PS side: read AFI_FS through ``slcr`` (a
    bus over its page, :func:`hpm0_slcr_bus`), rewrite DW_SS0_SEL if it differs and read it back.
    Returns the width it had (bits; None for the reserved code 3). Raises :class:`DriverError`
    when the field does not take the value."""
    offset = AFI_FS % mmap.PAGESIZE
    mask = 0b11 << HPM0_WIDTH_LSB
    wanted = HPM0_WIDTH_CODES[width] << HPM0_WIDTH_LSB
    value = int(slcr.read32(offset))
    widths = {code: bits for bits, code in HPM0_WIDTH_CODES.items()}
    before = widths.get((value & mask) >> HPM0_WIDTH_LSB)
    if value & mask != wanted:
        slcr.write32(offset, value & ~mask | wanted)
        check = int(slcr.read32(offset))
        if check & mask != wanted:
            raise DriverError(f"cannot set M_AXI_HPM0_FPD to {width} bits: AFI_FS "
                              f"(0x{AFI_FS:08X}) reads 0x{check:08X} after writing "
                              f"0x{value & ~mask | wanted:08X} (bits 9:8 should be "
                              f"{HPM0_WIDTH_CODES[width]})")
    return before


def _version(text):
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    return None if match is None else tuple(int(part or 0) for part in match.groups())


def check_pynq_hwh_parser():
    """Raise :class:`DriverError` when the installed PYNQ cannot parse this design's ``.hwh``
    (pynqmetadata before 0.1.5); returns pynqmetadata's version, or None on PYNQ 2.x."""
    from importlib import metadata

    try:
        version = metadata.version("pynqmetadata")
    except metadata.PackageNotFoundError:
        return None
    parts = _version(version)
    if parts is not None and parts < PYNQMETADATA_FIXED:
        fixed = ".".join(map(str, PYNQMETADATA_FIXED))
        raise DriverError(f"--bitstream: this PYNQ's .hwh parser (pynqmetadata {version}, as on "
                          f"PYNQ 3.0.x images) cannot read this design (its register interface "
                          f"is a port of the block design, not an IP); upgrade it "
                          f"(pip3 install 'pynqmetadata>={fixed}'), or load the bitstream with "
                          f"fpgautil -b and run without --bitstream")
    return version


def default_bus(base=DEFAULT_BASE, path="/dev/mem"):
    """PYNQ's MMIO when PYNQ is installed, else ``path`` (``/dev/mem``)."""
    try:
        import pynq  # noqa: F401
    except ImportError:
        return DevMemBus(base, path=path)
    return PynqBus(base)


def pack_image(pixels):
    """The 1024 window words of an image (uint8 ``[3, 32, 32]`` or ``[1, 3, 32, 32]``): pixel
    ``y * 32 + x`` as red | green << 8 | blue << 16."""
    pixels = np.asarray(pixels)
    if pixels.shape == (1, *IMAGE_SHAPE):
        pixels = pixels[0]
    if pixels.shape != IMAGE_SHAPE or pixels.dtype != np.uint8:
        raise ValueError(f"an image must be uint8 {list(IMAGE_SHAPE)}, not {pixels.dtype} "
                         f"{list(pixels.shape)}")
    rgb = pixels.reshape(3, PIXELS).astype(np.uint32)
    return rgb[0] | rgb[1] << 8 | rgb[2] << 16


def _seconds(name, value, zero=False):
    """A finite, positive (or with ``zero``, non-negative) number of seconds: a NaN or
    infinite timeout would wait forever."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        raise ValueError(f"{name} must be a finite {'non-negative' if zero else 'positive'} "
                         f"number of seconds, not {value!r}")
    return value


# About one image at 200 MHz (the core's interval is about 20,000 cycles): how long a batch is
# left alone before the driver starts polling, where there is no interrupt.
IMAGE_SECONDS = 100e-6


def _signed32(value):
    return value - (1 << 32) if value & 0x8000_0000 else value


class Driver:
    """Classifies images on the accelerator behind ``bus`` (a :class:`BusBackend`).

    ``timeout`` (seconds, as the backend counts them) bounds :meth:`wait` and, per image,
    :meth:`classify_batch`. Unless ``check_id`` is false the constructor checks ``ID`` and
    ``VERSION`` and raises :class:`NotLoaded` when the accelerator is not there. ``memory`` (a
    memory backend: :class:`PynqMemory`, :class:`ArrayMemory`) is needed for batches; a bus
    with a ``wait_interrupt(timeout)`` method is waited on through the interrupt, otherwise
    the driver sleeps ``image_seconds`` per image of the batch, then polls ``STATUS``.
    """

    def __init__(self, bus, *, timeout=1.0, poll_interval=0.0, check_id=True, memory=None,
                 image_seconds=IMAGE_SECONDS):
        self.bus, self.timeout, self.poll_interval = bus, _seconds("timeout", timeout), \
            _seconds("poll_interval", poll_interval, zero=True)
        self.memory = memory
        self.image_seconds = _seconds("image_seconds", image_seconds)
        self._buffers = None
        if check_id:
            self.identify()

    # ---- registers by name ---------------------------------------------------------------------
    def read(self, name, index=0):
        return int(self.bus.read32(register(name).address(index)))

    def write(self, name, value, index=0):
        self.bus.write32(register(name).address(index), value)

    def identify(self):
        """Check ``ID`` and the major ``VERSION``; returns the version."""
        ident = self.read("ID")
        if ident != ID_VALUE:
            raise NotLoaded(f"ID register reads 0x{ident:08X}, not 0x{ID_VALUE:08X}: the FracBNN "
                            f"bitstream is not loaded, or not at this base address")
        version = self.read("VERSION")
        if version >> 16 != VERSION_VALUE >> 16:
            raise NotLoaded(f"register map version {version >> 16}.{version & 0xFFFF} is not "
                            f"{VERSION_VALUE >> 16}.x; rebuild the bitstream or update the driver")
        return version

    def status(self):
        """``STATUS`` as a dict of its fields (lower-case names, booleans)."""
        value = self.read("STATUS")
        return {item.name.lower(): bool(value & item.mask)
                for item in register("STATUS").fields}

    # ---- operations ----------------------------------------------------------------------------
    def soft_reset(self):
        """Reset the accelerator; an image in flight is abandoned."""
        self.write("CONTROL", field("CONTROL", "SOFT_RESET").mask)

    def load_image(self, pixels):
        """Write an image (uint8 ``[3, 32, 32]``) into the image window."""
        words = pack_image(pixels)
        if self.status()["loading"]:
            raise DriverError("the image window is being streamed into the accelerator; wait "
                              "for STATUS.LOADING to clear")
        base = register("IMAGE").offset
        write = self.bus.write32
        for index, word in enumerate(words.tolist()):
            write(base + 4 * index, word)

    def start(self):
        """Start classifying the image in the window; returns the ``IMAGES`` count before."""
        if self.status()["busy"]:
            raise DriverError("the accelerator is busy with an image; wait for it or call "
                              "soft_reset()")
        images = self.read("IMAGES")
        self.write("CONTROL", field("CONTROL", "START").mask)
        return images

    def wait(self, images_before, timeout=None):
        """Wait until the started image is done. ``images_before`` is what :meth:`start`
        returned: the image counts as done when ``DONE`` is set and ``IMAGES`` has moved on, so a
        status read that overtook the start command cannot be mistaken for the result."""
        timeout = self.timeout if timeout is None else _seconds("timeout", timeout)
        deadline = self.bus.now() + timeout
        while True:
            status = self.read("STATUS")
            if status & field("STATUS", "ERROR").mask:
                raise AcceleratorFault("the accelerator reports an error (STATUS.ERROR: its "
                                       "weight memory is corrupt); soft_reset() clears the flag")
            if status & field("STATUS", "DONE").mask and self.read("IMAGES") != images_before:
                return
            if self.bus.now() > deadline:
                flags = ", ".join(name for name, on in self.status().items() if on) or "idle"
                raise AcceleratorTimeout(
                    f"no result within {timeout:g} s (STATUS: {flags}; CYCLES: "
                    f"{self.read('CYCLES')}); is the PL clock running? soft_reset() abandons "
                    f"the image")
            self.bus.sleep(self.poll_interval)

    def logits(self):
        """The ten logits of the last image (int16 FM codes, value = code / 128)."""
        count = register("LOGITS").count
        return np.array([_signed32(self.read("LOGITS", k)) for k in range(count)], np.int16)

    def cycles(self):
        return self.read("CYCLES")

    def classify(self, pixels, timeout=None):
        """Load ``pixels`` (uint8 ``[3, 32, 32]``), start, wait; returns ``(logits, cycles)``."""
        self.load_image(pixels)
        images = self.start()
        self.wait(images, timeout)
        return self.logits(), self.cycles()

    # ---- batches --------------------------------------------------------------------------------
    def _batch_buffers(self, count):
        """The image and result buffers, reused while they are large enough."""
        if self.memory is None:
            raise DriverError("classify_batch needs a memory backend for its buffers "
                              "(Driver(bus, memory=PynqMemory()) on the board)")
        if self._buffers is None or self._buffers[0].nbytes < count * IMAGE_BYTES:
            if self._buffers is not None:
                for buffer in self._buffers:
                    buffer.free()
            self._buffers = (self.memory.allocate(count * IMAGE_BYTES),
                             self.memory.allocate(count * RECORD_BYTES))
        return self._buffers

    def start_batch(self, count, src, dst):
        """Check the buffers (:func:`check_batch_buffers`), program ``COUNT``, ``SRC``, ``DST``,
        enable the end-of-batch interrupt and write ``START_BATCH``."""
        check_batch_buffers(count, src, dst)
        status = self.read("STATUS")
        if status & field("STATUS", "BUSY").mask:
            raise DriverError("the accelerator is busy (an image or a batch); wait for it or "
                              "call soft_reset()")
        end = field("IRQ_STATUS", "BATCH_END").mask
        for name, value in (("COUNT", count), ("SRC_LO", src & 0xFFFF_FFFF), ("SRC_HI", src >> 32),
                            ("DST_LO", dst & 0xFFFF_FFFF), ("DST_HI", dst >> 32),
                            ("IRQ_STATUS", end), ("IRQ_ENABLE", end)):
            self.write(name, value)
        self.write("CONTROL", field("CONTROL", "START_BATCH").mask)

    def wait_batch(self, count, timeout=None):
        """Wait for the end of the batch of ``count`` images (the interrupt, or a sleep and then
        polling); raise :class:`AcceleratorFault` naming the image on an error response."""
        timeout = count * self.timeout if timeout is None else _seconds("timeout", timeout)
        deadline = self.bus.now() + timeout
        end = field("IRQ_STATUS", "BATCH_END").mask
        wait_interrupt = getattr(self.bus, "wait_interrupt", None)
        if wait_interrupt is not None:
            wait_interrupt(timeout)
        elif not self.read("IRQ_STATUS") & end:
            self.bus.sleep(min(count * self.image_seconds, timeout))
        while not self.read("IRQ_STATUS") & end:
            if self.bus.now() > deadline:
                raise AcceleratorTimeout(
                    f"the batch of {count} images did not end within {timeout:g} s "
                    f"({self.read('BATCH_IMAGES')} written, {self.read('BATCH_CYCLES')} cycles); "
                    f"is the PL clock running? soft_reset() stops the batch")
            self.bus.sleep(self.poll_interval)
        self.write("IRQ_STATUS", end)
        status = self.read("STATUS")
        if status & field("STATUS", "BUS_ERROR").mask:
            value = self.read("BATCH_ERROR")
            image = (value & field("BATCH_ERROR", "IMAGE").mask) >> field("BATCH_ERROR",
                                                                            "IMAGE").lsb
            resp = (value & field("BATCH_ERROR", "RESP").mask) >> field("BATCH_ERROR", "RESP").lsb
            what = ("writing its result" if value & field("BATCH_ERROR", "WRITE").mask
                    else "reading its pixels")
            raise AcceleratorFault(
                f"the batch stopped at image {image}: {'DECERR' if resp == 3 else 'SLVERR'} "
                f"while {what} (is the buffer in memory the PS's S_AXI_HP0_FPD reaches?)")
        if status & field("STATUS", "ERROR").mask:
            raise AcceleratorFault("the accelerator reports an error (STATUS.ERROR: its weight "
                                   "memory is corrupt); soft_reset() clears the flag")

    def classify_batch(self, pixels, timeout=None):
        """Classify ``pixels`` (uint8 ``[N, 3, 32, 32]``) in one batch through DDR; returns
        ``(logits, cycles)``: int16 ``[N, 10]`` FM codes (value = code / 128) and int64 ``[N]``
        per-image cycle counts. The images are copied into the image buffer as they are (one
        NumPy copy) and the results viewed in place."""
        pixels = check_pixels_batch(pixels)
        count = len(pixels)
        images, results = self._batch_buffers(count)
        np.copyto(images.array[:count * IMAGE_BYTES].reshape(pixels.shape), pixels)
        images.flush()
        self.start_batch(count, images.address, results.address)
        self.wait_batch(count, timeout)
        results.invalidate()
        records = results.array[:count * RECORD_BYTES].view(RECORD_DTYPE)
        return records["logits"].copy(), records["cycles"].astype(np.int64)
