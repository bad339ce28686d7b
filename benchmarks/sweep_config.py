"""The design-space sweep's configuration file (TOML), for exploring your own array sizes.

Pass it as ``python -m benchmarks.sweep --config FILE`` (or ``python -m benchmarks --config
FILE``, whose sweep section then uses it). Every key is optional; a missing key keeps its
default, so an empty file is the default sweep::

    [sweep]
    # Output channels per beat (the array's PEs). Divisors of 16: 1, 2, 4, 8, 16.
    pe = [4, 8, 16]
    # Input channels per beat (times 9 taps and 2 bit planes). Divisors of 16.
    simd_channels = [4, 8, 16]
    # Kernels the weight cache's Huffman decoder emits per cycle. A positive integer that
    # divides at least one of the simd_channels values; a point whose simd_channels it does
    # not divide is left out (the decoder fills whole rows of simd_channels kernels).
    decoder_symbols_per_cycle = [1, 2, 4, 8]
    # Output pixels per beat in the stride-1 layers: 1 or 2.
    pixels_per_beat = [1, 2]
    # Clock at which images/s are reported, in MHz (a positive number up to 10000).
    clock_mhz = 250

The default grid leaves out the widths 1 and 2: the sweep synthesises the weight cache at
every (pe, simd_channels), half a minute to ten minutes each, and the whole grid has 16 more
(while the points it adds use at most a quarter of the default's lanes).
``benchmarks/full_grid.toml`` is every configuration the accelerator accepts.

Each array key takes a list of integers or a single integer. The sweep's points are every
combination of the four lists (those the accelerator's :class:`rtl.schedule.AcceleratorConfig`
accepts). The widths must divide every layer's channel count (16, 32 and 64), as
:class:`~rtl.schedule.AcceleratorConfig` requires.

Errors (unknown tables or keys, wrong types, values the accelerator cannot take, malformed
TOML, a missing file) raise :class:`SweepConfigError`, whose message names the file and the
key; the command-line entry points print it and exit with status 2.
"""

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from fracbnn_golden.model import STEM_CHANNELS
from rtl.schedule import CONFIG_KEYS, PIXELS_PER_BEAT, AcceleratorConfig, ConfigError

__all__ = ["DEFAULT_GRID", "SweepConfigError", "SweepGrid", "load_sweep_config"]

# Every value AcceleratorConfig accepts for the array widths (the divisors of 16).
ARRAY_WIDTHS = tuple(width for width in range(1, STEM_CHANNELS + 1) if STEM_CHANNELS % width == 0)
# The default grid's widths (see the module documentation for why not 1 and 2).
DEFAULT_WIDTHS = (4, 8, 16)
DECODER_SYMBOLS = (1, 2, 4, 8)
DEFAULT_CLOCK_MHZ = 250
# No FPGA clock comes near; larger values (1e308, inf) only overflow images/s.
MAX_CLOCK_MHZ = 10_000

SECTION = "sweep"
_INTEGER_LIST_KEYS = CONFIG_KEYS
_KEYS = (*_INTEGER_LIST_KEYS, "clock_mhz")


class SweepConfigError(ValueError):
    """An invalid sweep configuration file; the message names the file and the key."""


@dataclass(frozen=True)
class SweepGrid:
    """The values the sweep combines and the clock it reports images/s at."""

    pe: tuple = DEFAULT_WIDTHS
    simd_channels: tuple = DEFAULT_WIDTHS
    decoder_symbols_per_cycle: tuple = DECODER_SYMBOLS
    pixels_per_beat: tuple = PIXELS_PER_BEAT
    clock_mhz: float = DEFAULT_CLOCK_MHZ
    source: str = field(default="the default grid", compare=False)

    def configs(self):
        """Every valid :class:`~rtl.schedule.AcceleratorConfig` of the grid, in a fixed order
        (pe, then simd_channels, the decoder's symbols per cycle, the pixels per beat)."""
        return [AcceleratorConfig(pe=pe, simd_channels=simd, decoder_symbols_per_cycle=symbols,
                                  pixels_per_beat=pixels)
                for pe in self.pe for simd in self.simd_channels
                for symbols in self.decoder_symbols_per_cycle if simd % symbols == 0
                for pixels in self.pixels_per_beat]

    def as_dict(self):
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in ((key, getattr(self, key)) for key in _KEYS)}


DEFAULT_GRID = SweepGrid()


def _integer_list(value, where):
    values = value if isinstance(value, list) else [value]
    if not values:
        raise SweepConfigError(f"{where}: an empty list; give at least one value")
    for item in values:
        # bool is an int subclass: `pe = true` is a mistake, not 1.
        if not isinstance(item, int) or isinstance(item, bool):
            raise SweepConfigError(f"{where}: {item!r} ({type(item).__name__}) is not an "
                                   f"integer; give an integer or a list of integers")
        if item < 1:
            raise SweepConfigError(f"{where}: {item} is not a positive integer")
    return tuple(sorted(set(values)))


def _check_widths(key, values, where):
    for value in values:
        try:
            # The decoder must divide simd_channels: 1 divides every width.
            AcceleratorConfig(**{key: value, "decoder_symbols_per_cycle": 1})
        except ConfigError as error:
            raise SweepConfigError(f"{where}: {value} is not allowed ({error}); allowed: "
                                   f"{', '.join(map(str, ARRAY_WIDTHS))}") from None


def grid_from_table(table, source):
    """A :class:`SweepGrid` from the parsed TOML ``table``; ``source`` names it in errors."""
    if not isinstance(table, dict):
        raise SweepConfigError(f"{source}: the top level must be a table")
    unknown = sorted(set(table) - {SECTION})
    if unknown:
        raise SweepConfigError(f"{source}: unknown key or table {unknown[0]!r}; the file has "
                               f"one table, [{SECTION}]")
    section = table.get(SECTION, {})
    if not isinstance(section, dict):
        raise SweepConfigError(f"{source}: {SECTION!r} must be a table ([{SECTION}]), not "
                               f"{type(section).__name__}")
    unknown = sorted(set(section) - set(_KEYS))
    if unknown:
        raise SweepConfigError(f"{source}: unknown key {SECTION}.{unknown[0]}; the keys are "
                               f"{', '.join(_KEYS)}")
    values = {}
    for key in _INTEGER_LIST_KEYS:
        if key in section:
            values[key] = _integer_list(section[key], f"{source}: {SECTION}.{key}")
    for key in ("pe", "simd_channels"):
        if key in values:
            _check_widths(key, values[key], f"{source}: {SECTION}.{key}")
    for pixels in values.get("pixels_per_beat", ()):
        if pixels not in PIXELS_PER_BEAT:
            raise SweepConfigError(f"{source}: {SECTION}.pixels_per_beat: {pixels} is not "
                                   f"allowed; allowed: {', '.join(map(str, PIXELS_PER_BEAT))}")
    if "clock_mhz" in section:
        clock = section["clock_mhz"]
        if not isinstance(clock, int | float) or isinstance(clock, bool) \
                or not 0 < clock <= MAX_CLOCK_MHZ:             # also refuses nan and inf
            raise SweepConfigError(f"{source}: {SECTION}.clock_mhz: {clock!r} is not a positive "
                                   f"number of MHz up to {MAX_CLOCK_MHZ}")
        values["clock_mhz"] = clock
    grid = SweepGrid(**values, source=source)
    for symbols in grid.decoder_symbols_per_cycle:
        if not any(simd % symbols == 0 for simd in grid.simd_channels):
            raise SweepConfigError(
                f"{source}: {SECTION}.decoder_symbols_per_cycle: {symbols} divides none of "
                f"simd_channels {list(grid.simd_channels)}; the decoder's symbols per cycle "
                f"must divide simd_channels")
    return grid


def load_sweep_config(path):
    """The :class:`SweepGrid` of the TOML file ``path`` (see the module documentation)."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise SweepConfigError(f"{path}: no such file") from None
    except OSError as error:
        raise SweepConfigError(f"{path}: cannot read it ({error.strerror})") from None
    try:
        # utf-8-sig: a byte-order mark (some Windows editors write one) is not TOML.
        table = tomllib.loads(text.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise SweepConfigError(f"{path}: not a UTF-8 text file") from None
    except tomllib.TOMLDecodeError as error:
        raise SweepConfigError(f"{path}: not valid TOML: {error}") from None
    return grid_from_table(table, str(path))
