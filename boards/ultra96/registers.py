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
    "APERTURE", "ADDR_WIDTH", "ID_VALUE", "REGISTERS", "VERSION_VALUE", "Field", "Register",
    "field", "markdown", "register",
]

# The address window the interface decodes (and the block design assigns): 64 KiB.
ADDR_WIDTH = 16
APERTURE = 1 << ADDR_WIDTH
# ASCII "FBNN": tells the driver that this bitstream is loaded at the base address.
ID_VALUE = 0x4642_4E4E
# Major << 16 | minor; the major number changes when the map changes incompatibly.
VERSION_VALUE = 0x0001_0000
# Words of the image window (a pixel each) and of the logits (a class each).
CLASSES = len(CLASS_NAMES)


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
                             "Refused with SLVERR while `STATUS.BUSY` is set."),
        Field("SOFT_RESET", 1, 1, "Reset the accelerator and abandon the current image "
                                  "(`START` in the same write is ignored). The image window and "
                                  "`SCRATCH` keep their contents."),
    )),
    Register("STATUS", 0x000C, "RO", "State of the accelerator.", fields=(
        Field("BUSY", 0, 1, "An image is being streamed or computed."),
        Field("DONE", 1, 1, "`LOGITS` hold the result of the last started image. Cleared by "
                            "`START` and `SOFT_RESET`."),
        Field("ERROR", 2, 1, "The accelerator's weight decoder met an invalid code (a corrupt "
                             "memory image); sticky until `SOFT_RESET`."),
        Field("LOADING", 3, 1, "The image window is being streamed into the accelerator: "
                               "accesses to `IMAGE` are refused with SLVERR."),
    )),
    Register("CYCLES", 0x0010, "RO", "Clock cycles from the image's first pixel transfer to its "
                                     "logits (counts up while the image is computed)."),
    Register("IMAGES", 0x0014, "RO", "Images the accelerator has finished since the last reset."),
    Register("SCRATCH", 0x0018, "RW", "Free for the host (bus checks); byte writes allowed."),
    Register("LOGITS", 0x0040, "RO", "The 10 logits of the last image, class `k` at word `k`: "
                                     "FM codes (value = code / 128), int16 sign-extended to 32 "
                                     "bits.", count=CLASSES),
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
        "# FracBNN accelerator: AXI4-Lite register map",
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
    ]
    return "\n".join(lines)
