"""The register map of the AXI4-Lite accelerator interface: defined here once.

:mod:`boards.ultra96.axi_accelerator` builds its address decoder from :data:`REGISTERS`,
:mod:`boards.ultra96.driver` takes its offsets and bit positions from it, and
``boards/ultra96/REGISTERS.md`` is generated from it (``python -m boards.ultra96 regmap``;
a test checks that the file is up to date).

Offsets are byte offsets from the base address of the interface; every register is 32 bits
wide and word aligned. Accesses the map does not allow get an AXI SLVERR response.
"""

from dataclasses import dataclass

from fracbnn_golden.model import CLASSES as CLASS_NAMES
from fracbnn_golden.model import PIXELS

__all__ = [
    "APERTURE", "ADDR_WIDTH", "BEAT_BYTES", "COUNT_BITS", "DMA_ADDR_WIDTH", "DMA_DATA_WIDTH",
    "DST_ALIGN", "ID_VALUE", "IMAGE_BYTES", "MAX_BURST_BEATS", "MAX_COUNT", "RECORD_BYTES",
    "RECORD_FIELDS", "REGISTERS", "SRC_ALIGN", "VERSION_VALUE", "Field", "Register", "field",
    "markdown", "register",
]

# The address window the interface decodes (and the block design assigns): 64 KiB.
ADDR_WIDTH = 16
APERTURE = 1 << ADDR_WIDTH
# ASCII "FBNN": tells the driver that this bitstream is loaded at the base address.
ID_VALUE = 0x4642_4E4E
# Major << 16 | minor; the major number changes when the map changes incompatibly.
# 2.0: batches through the AXI4 master, the interrupt.
VERSION_VALUE = 0x0002_0000
# Words of the image window (a pixel each) and of the logits (a class each).
CLASSES = len(CLASS_NAMES)

# ---- batches: the AXI4 master on the PS's S_AXI_HP0_FPD ---------------------------------------
# The Zynq UltraScale+'s physical addresses are 40 bits; the port moves 128 bits per beat.
DMA_ADDR_WIDTH = 40
DMA_DATA_WIDTH = 128
BEAT_BYTES = DMA_DATA_WIDTH // 8
# The images: the host's uint8 [N, 3, 32, 32] array as it is (C order), so image n starts at
# SRC + n * IMAGE_BYTES with its red, green and blue planes of 1024 bytes, pixel y * 32 + x at
# byte y * 32 + x of each plane.
IMAGE_BYTES = 3 * PIXELS
# The results: a 32-byte record per image at DST + n * RECORD_BYTES, little-endian fields
# (name, NumPy type, count): the logits (FM codes, value = code / 128), the core's cycle count,
# the image's index in the batch and a reserved word (written as 0).
RECORD_BYTES = 32
RECORD_FIELDS = (("logits", "<i2", CLASSES), ("cycles", "<u4", 1), ("image", "<u4", 1),
                 ("reserved", "<u4", 1))
# Alignment START_BATCH requires: whole beats for the images, whole records for the results.
SRC_ALIGN = BEAT_BYTES
DST_ALIGN = RECORD_BYTES
# Images per batch: COUNT is 20 bits (a batch of the most is 3 GiB, more than the Ultra96's DDR).
COUNT_BITS = 20
MAX_COUNT = (1 << COUNT_BITS) - 1
# The longest read burst, in beats (256 bytes; the HP ports' efficient size).
MAX_BURST_BEATS = 16


@dataclass(frozen=True)
class Field:
    """Bits ``lsb .. lsb + width - 1`` of a register."""

    name: str
    lsb: int
    width: int
    description: str

    @property
    def mask(self):
        return ((1 << self.width) - 1) << self.lsb

    def bits(self):
        return f"{self.lsb}" if self.width == 1 else f"{self.lsb + self.width - 1}:{self.lsb}"


@dataclass(frozen=True)
class Register:
    """``count`` consecutive 32-bit words from byte ``offset``; ``access`` is ``RO`` (writes
    answered with SLVERR), ``WO`` (reads answered with SLVERR) or ``RW``."""

    name: str
    offset: int
    access: str
    description: str
    count: int = 1
    fields: tuple = ()

    @property
    def end(self):
        """The byte offset just past the last word."""
        return self.offset + 4 * self.count

    def address(self, index=0):
        if not 0 <= index < self.count:
            raise IndexError(f"{self.name} has {self.count} word(s), not index {index}")
        return self.offset + 4 * index

    @property
    def readable(self):
        return self.access in ("RO", "RW")

    @property
    def writable(self):
        return self.access in ("WO", "RW")


REGISTERS = (
    Register("ID", 0x0000, "RO", f"Identification, always `0x{ID_VALUE:08X}` (ASCII `FBNN`)."),
    Register("VERSION", 0x0004, "RO",
             f"Register map version, major << 16 \\| minor: `0x{VERSION_VALUE:08X}`."),
    Register("CONTROL", 0x0008, "WO", "Commands; bits written as 0 do nothing.", fields=(
        Field("START", 0, 1, "Stream the image window into the accelerator and classify it. "
                             "Refused with SLVERR while `STATUS.BUSY` is set and together with "
                             "`START_BATCH`."),
        Field("SOFT_RESET", 1, 1, "Reset the accelerator and abandon the current image or "
                                  "batch (`START` and `START_BATCH` in the same write are "
                                  "ignored): a batch issues no new transaction, completes the "
                                  "outstanding ones, then `STATUS.BATCH` clears. Clears `DONE`, "
                                  "`BUS_ERROR` and `IRQ_STATUS`. The image window, `SCRATCH` "
                                  "and the batch registers keep their contents."),
        Field("START_BATCH", 2, 1, "Classify `COUNT` images from `SRC` in DDR and write their "
                                   "records to `DST` (the layouts are in the section on "
                                   "batches). Refused with SLVERR while `STATUS.BUSY` is set, "
                                   "and when `COUNT` is 0, `SRC` is not a multiple of "
                                   f"{SRC_ALIGN} or `DST` of {DST_ALIGN}, either area "
                                   "passes the end of the 40-bit address space, or the two "
                                   "areas overlap."),
    )),
    Register("STATUS", 0x000C, "RO", "State of the accelerator.", fields=(
        Field("BUSY", 0, 1, "An image or a batch is in progress."),
        Field("DONE", 1, 1, "The last command finished: `LOGITS` hold the result of the last "
                            "started image, or every record of the last batch is written. "
                            "Cleared by `START`, `START_BATCH` and `SOFT_RESET`."),
        Field("ERROR", 2, 1, "The accelerator's weight decoder met an invalid code (a corrupt "
                             "memory image); sticky until `SOFT_RESET`."),
        Field("LOADING", 3, 1, "The image window is being streamed into the accelerator: "
                               "accesses to `IMAGE` are refused with SLVERR."),
        Field("BATCH", 4, 1, "A batch is running, or completing its outstanding transfers "
                             "after an error response or `SOFT_RESET`."),
        Field("BUS_ERROR", 5, 1, "The last batch was stopped by an error response (SLVERR or "
                                 "DECERR) to one of its reads or writes; `BATCH_ERROR` says "
                                 "where. Cleared by `START_BATCH` and `SOFT_RESET`."),
    )),
    Register("CYCLES", 0x0010, "RO", "Clock cycles from the image's first pixel transfer to its "
                                     "logits (counts up while the image is computed)."),
    Register("IMAGES", 0x0014, "RO", "Images the accelerator has finished since the last reset."),
    Register("SCRATCH", 0x0018, "RW", "Free for the host (bus checks); byte writes allowed."),
    Register("IRQ_STATUS", 0x001C, "RW", "Interrupt causes; write 1 to a bit to clear it. The "
                                         "interrupt output (`pl_ps_irq0`) is high while a set "
                                         "bit is enabled in `IRQ_ENABLE`.", fields=(
        Field("BATCH_END", 0, 1, "A batch ended: all its records written, or stopped by an "
                                 "error response (`STATUS.BUS_ERROR`). Not set by "
                                 "`SOFT_RESET`."),
    )),
    Register("IRQ_ENABLE", 0x0020, "RW", "Interrupt enables, bit for bit as `IRQ_STATUS`.",
             fields=(Field("BATCH_END", 0, 1, "Interrupt at the end of a batch."),)),
    Register("COUNT", 0x0024, "RW", f"Images in the next batch, 1 to {MAX_COUNT:,}; bits "
                                    f"31:{COUNT_BITS} are ignored and read as 0."),
    Register("SRC_LO", 0x0028, "RW", "Physical address of the batch's images, bits 31:0."),
    Register("SRC_HI", 0x002C, "RW", f"Physical address of the batch's images, bits "
                                     f"{DMA_ADDR_WIDTH - 1}:32 in bits "
                                     f"{DMA_ADDR_WIDTH - 33}:0; the other bits read as 0."),
    Register("DST_LO", 0x0030, "RW", "Physical address of the batch's records, bits 31:0."),
    Register("DST_HI", 0x0034, "RW", f"Physical address of the batch's records, bits "
                                     f"{DMA_ADDR_WIDTH - 1}:32 in bits "
                                     f"{DMA_ADDR_WIDTH - 33}:0; the other bits read as 0."),
    Register("BATCH_IMAGES", 0x0038, "RO", "Records of the current (or last) batch written and "
                                           "acknowledged."),
    Register("BATCH_CYCLES", 0x003C, "RO", "Clock cycles of the current (or last) batch, from "
                                           "`START_BATCH` to its end."),
    Register("LOGITS", 0x0040, "RO", "The 10 logits of the last image, class `k` at word `k`: "
                                     "FM codes (value = code / 128), int16 sign-extended to 32 "
                                     "bits.", count=CLASSES),
    Register("BATCH_ERROR", 0x0080, "RO", "Where the last batch met an error response (valid "
                                          "while `STATUS.BUS_ERROR` is set).", fields=(
        Field("IMAGE", 0, COUNT_BITS, "The image (index in the batch) whose pixels were read "
                                      "or whose record was written."),
        Field("RESP", 24, 2, "The response: 2 SLVERR, 3 DECERR."),
        Field("WRITE", 28, 1, "1: the record's write; 0: a read of the image."),
    )),
    Register("IMAGE", 0x1000, "RW", "The image window: pixel `y * 32 + x` of a 32x32 RGB image "
                                    "at word `y * 32 + x`; bits 31:24 are ignored and read as 0. "
                                    "Byte writes allowed.", count=PIXELS, fields=(
        Field("R", 0, 8, "red"), Field("G", 8, 8, "green"), Field("B", 16, 8, "blue"),
    )),
)


def register(name):
    """The :class:`Register` called ``name``."""
    for reg in REGISTERS:
        if reg.name == name:
            return reg
    raise KeyError(f"no register {name!r}; the map has {', '.join(r.name for r in REGISTERS)}")


def field(register_name, field_name):
    """The :class:`Field` ``field_name`` of register ``register_name``."""
    reg = register(register_name)
    for item in reg.fields:
        if item.name == field_name:
            return item
    raise KeyError(f"register {register_name} has no field {field_name!r}")


def check_map(registers=REGISTERS, aperture=APERTURE):
    """Raise ``ValueError`` if registers overlap, are misaligned, leave the aperture, or have
    overlapping or too wide fields."""
    names = set()
    spans = sorted((reg.offset, reg.end, reg.name) for reg in registers)
    for reg in registers:
        if reg.name in names:
            raise ValueError(f"register {reg.name} is defined twice")
        names.add(reg.name)
        if reg.offset % 4 or reg.count < 1 or reg.end > aperture:
            raise ValueError(f"register {reg.name} at 0x{reg.offset:04X} x {reg.count} is "
                             f"misaligned or outside the 0x{aperture:X}-byte aperture")
        if reg.access not in ("RO", "WO", "RW"):
            raise ValueError(f"register {reg.name}: access {reg.access!r} is not RO/WO/RW")
        used = 0
        for item in reg.fields:
            if item.lsb < 0 or item.width < 1 or item.lsb + item.width > 32 or used & item.mask:
                raise ValueError(f"field {reg.name}.{item.name} overlaps or leaves the word")
            used |= item.mask
    for (_, end, name), (start, _, other) in zip(spans, spans[1:]):
        if start < end:
            raise ValueError(f"registers {name} and {other} overlap")


check_map()


def markdown():
    """The register map as a Markdown document (``boards/ultra96/REGISTERS.md``)."""
    lines = [
        "# FracBNN accelerator: AXI4-Lite register map and batch layouts",
        "",
        "<!-- Generated from boards/ultra96/registers.py by `python -m boards.ultra96 regmap "
        "--write`; do not edit. -->",
        "",
        f"Base address: where the block design maps the interface (the Ultra96 build: "
        f"`0xA0000000`, M_AXI_HPM0_FPD), {APERTURE // 1024} KiB. Registers are 32 bits; offsets "
        f"are in bytes. Reads of unmapped or write-only words, writes to unmapped or read-only "
        f"words, and refused commands are answered with SLVERR (on the Ultra96 a synchronous "
        f"external abort: Linux kills the process with SIGBUS).",
        "",
        "| offset | name | access | description |",
        "|---|---|---|---|",
    ]
    for reg in REGISTERS:
        span = (f"`0x{reg.offset:04X}`" if reg.count == 1
                else f"`0x{reg.offset:04X}`-`0x{reg.end - 1:04X}`")
        name = reg.name if reg.count == 1 else f"{reg.name}[{reg.count}]"
        lines.append(f"| {span} | {name} | {reg.access} | {reg.description} |")
    for reg in REGISTERS:
        if not reg.fields:
            continue
        lines += ["", f"## {reg.name} fields", "", "| bits | field | description |",
                  "|---|---|---|"]
        lines += [f"| {item.bits()} | {item.name} | {item.description} |" for item in reg.fields]
    lines += [
        "",
        "## Classifying an image",
        "",
        "1. Check `ID` (the bitstream is loaded) and that `STATUS.BUSY` is clear.",
        f"2. Write the {PIXELS} pixels to `IMAGE`.",
        "3. Read `IMAGES`, then write `CONTROL.START`.",
        "4. Poll `STATUS` until `DONE` is set and `IMAGES` has moved on (AXI does not order a "
        "read after a write, so a status read may overtake the `START` write), and check "
        "`ERROR`.",
        "5. Read `LOGITS` and `CYCLES`.",
        "",
        "`boards/ultra96/driver.py` does this (`Driver.classify`).",
        "",
        "The accelerator reads the image window only while `STATUS.LOADING` is set (the first "
        f"{PIXELS} cycles or so after `START`), so the next image may be written while the current "
        "one is computed.",
        "",
        "## Classifying a batch",
        "",
        "The batch engine is an AXI4 master on the PS's `S_AXI_HP0_FPD` "
        f"({DMA_DATA_WIDTH}-bit data, {DMA_ADDR_WIDTH}-bit physical addresses): it reads the "
        "images from DDR into a two-image buffer, feeds the accelerator one pixel per cycle "
        "while the next image is fetched, and writes a record per image.",
        "",
        f"* Images at `SRC`: the host's uint8 `[N, 3, 32, 32]` array as it is (C order), "
        f"{IMAGE_BYTES} bytes per image: the red, green and blue planes of {PIXELS} bytes, "
        f"pixel `y * 32 + x` at byte `y * 32 + x` of each. `SRC` must be a multiple of "
        f"{SRC_ALIGN}.",
        f"* Records at `DST`, {RECORD_BYTES} bytes per image, little-endian: "
        + ", ".join(f"`{name}` ({kind[1:]}" + (f" x {count}" if count > 1 else "") + ")"
                    for name, kind, count in RECORD_FIELDS)
        + f". The logits are FM codes (value = code / 128), `cycles` the accelerator's count "
        f"for the image, `image` its index in the batch, `reserved` 0. `DST` must be a "
        f"multiple of {DST_ALIGN}. Nothing outside the `N` records is written.",
        f"* Reads are bursts of at most {MAX_BURST_BEATS} beats that never cross a 4 KiB "
        "page, several outstanding; each record is one 2-beat burst.",
        "",
        "1. Put the images in physically contiguous memory the PS's HP0 port reaches (PYNQ: "
        "`allocate`), flush them from the caches.",
        "2. Write `COUNT`, `SRC_LO`/`SRC_HI`, `DST_LO`/`DST_HI`; set `IRQ_ENABLE.BATCH_END` and "
        "clear `IRQ_STATUS` (write 1).",
        "3. Write `CONTROL.START_BATCH` (refused with SLVERR while busy and for a zero count, "
        "unaligned, overlapping or out-of-range buffers).",
        "4. Wait for the interrupt (or poll `IRQ_STATUS.BATCH_END`), write 1 to "
        "`IRQ_STATUS.BATCH_END`.",
        "5. `STATUS.DONE`: every record is written (invalidate the cached copy, read them). "
        "`STATUS.BUS_ERROR`: an error response stopped the batch at the image `BATCH_ERROR` "
        "names; the records before it are written.",
        "",
        "`Driver.classify_batch` does this. `BATCH_CYCLES` counts the batch's cycles: "
        "`COUNT` times the accelerator's interval plus the first image's fetch and the last "
        "record's write.",
        "",
    ]
    return "\n".join(lines)
