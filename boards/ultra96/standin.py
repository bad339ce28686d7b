"""A memory-backed stand-in for the accelerator's batch interface, to measure and test the host
side of :meth:`boards.ultra96.driver.Driver.classify_batch` without the board or a simulator.

:class:`StandInAccelerator` is a bus backend (``read32``/``write32``) that models the registers
the batch path uses, with no bus latency at all, and an :class:`ArrayMemory` for its buffers.
``START_BATCH`` is refused as the RTL refuses it (:class:`BusError`, the SLVERR), and otherwise
"runs" the batch at once: it reads the images from the memory and writes a record per image
whose logit ``k`` is the red value of pixel ``k`` and whose cycle count is ``cycles``, then
raises ``IRQ_STATUS.BATCH_END``. So the time ``classify_batch`` takes against it is the host's
own work: packing, the register accesses and unpacking.
"""

import numpy as np

from .driver import RECORD_DTYPE, ArrayMemory, BusBackend, BusError, check_batch_buffers
from .driver import DriverError as _DriverError
from .registers import (
    CLASSES,
    COUNT_BITS,
    ID_VALUE,
    IMAGE_BYTES,
    PIXELS,
    RECORD_BYTES,
    VERSION_VALUE,
    field,
    register,
)

__all__ = ["StandInAccelerator", "standin_logits"]


def standin_logits(pixels):
    """The stand-in's logits for ``pixels`` (uint8 ``[N, 3, 32, 32]``): int16 ``[N, 10]``, the
    red values of pixels 0..9."""
    return pixels.reshape(len(pixels), 3, PIXELS)[:, 0, :CLASSES].astype(np.int16)


class StandInAccelerator(BusBackend):
    """The batch registers over ``memory_bytes`` of NumPy memory at physical ``base``
    (:attr:`memory`, an :class:`ArrayMemory`), or over ``memory`` where given (e.g. the region
    of a :class:`~boards.ultra96.driver.UdmabufMemory`). ``cycles``: the count written into
    each record."""

    def __init__(self, memory_bytes=16 << 20, base=0x4000_0000, cycles=20_000, memory=None):
        self.memory = (ArrayMemory(np.zeros(memory_bytes, np.uint8), base=base)
                       if memory is None else memory)
        self.cycles = cycles
        self.words = {name: 0 for name in ("COUNT", "SRC_LO", "SRC_HI", "DST_LO", "DST_HI",
                                           "IRQ_ENABLE", "IRQ_STATUS", "STATUS", "BATCH_IMAGES",
                                           "BATCH_CYCLES", "BATCH_ERROR", "SCRATCH")}
        self.words.update(ID=ID_VALUE, VERSION=VERSION_VALUE)
        self._names = {register(name).offset: name for name in self.words}
        self._control = register("CONTROL").offset

    def wait_interrupt(self, seconds):
        """The batch ended when ``START_BATCH`` was written: nothing to wait for."""

    def read32(self, offset):
        if offset not in self._names:
            raise BusError(f"read at 0x{offset:04X} answered with SLVERR (not modelled)")
        return self.words[self._names[offset]]

    def write32(self, offset, value):
        if offset == self._control:
            if value & field("CONTROL", "START_BATCH").mask:
                self._run_batch()
            return
        name = self._names.get(offset)
        if name is None or not register(name).writable:
            raise BusError(f"write at 0x{offset:04X} answered with SLVERR")
        if name == "IRQ_STATUS":
            self.words[name] &= ~value
        else:
            self.words[name] = value & (((1 << COUNT_BITS) - 1) if name == "COUNT"
                                        else 0xFFFF_FFFF)

    def _area(self, address, nbytes):
        start = address - self.memory.base
        if start < 0 or start + nbytes > len(self.memory.array):
            raise BusError(f"0x{address:X}..0x{address + nbytes - 1:X} is outside the memory "
                           "(DECERR)")
        return self.memory.array[start:start + nbytes]

    def _run_batch(self):
        count = self.words["COUNT"]
        src = self.words["SRC_HI"] << 32 | self.words["SRC_LO"]
        dst = self.words["DST_HI"] << 32 | self.words["DST_LO"]
        try:
            check_batch_buffers(count, src, dst)
        except _DriverError as error:
            raise BusError(f"START_BATCH answered with SLVERR ({error})") from None
        pixels = self._area(src, count * IMAGE_BYTES).reshape(count, 3, 32, 32)
        records = self._area(dst, count * RECORD_BYTES).view(RECORD_DTYPE)
        records["logits"] = standin_logits(pixels)
        records["cycles"] = self.cycles
        records["image"] = np.arange(count)
        records["reserved"] = 0
        self.words.update(BATCH_IMAGES=count, BATCH_CYCLES=count * self.cycles,
                          STATUS=field("STATUS", "DONE").mask)
        self.words["IRQ_STATUS"] |= field("IRQ_STATUS", "BATCH_END").mask
