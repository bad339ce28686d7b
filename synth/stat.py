"""Resource counts of a design from the cell counts of Yosys' ``stat -json``.

Yosys has no place and route for UltraScale+, so these are pre-placement estimates: Yosys does
not pack two small LUTs into one LUT6_2 the way Vivado does (the compressor trees instantiate
``LUT6_2`` themselves, and it counts as one LUT), and it maps ``+`` to CARRY4 cells, which
Vivado retargets to CARRY8 (the figures count CARRY8 equivalents).
"""

__all__ = ["parse_stat"]

# Cell names of the UltraScale+ primitives and the LUTs each one occupies. An inverter is a
# LUT1; Yosys maps some memories to LUT RAM and shift registers (SRL), which count as the LUTs
# they use.
_LUT_CELLS = {
    **{f"LUT{n}": 1 for n in range(1, 7)}, "LUT6_2": 1, "INV": 1,
    "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1,
    "RAM32X1S": 1, "RAM64X1S": 1, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1S": 2,
    "RAM128X1D": 4, "RAM256X1S": 4, "RAM32M": 4, "RAM64M": 4, "RAM256X1D": 8,
    "RAM512X1S": 8, "RAM32M16": 8, "RAM64M8": 8,
}
_FF_CELLS = {"FDRE", "FDSE", "FDCE", "FDPE"}
# In CARRY8 equivalents: Yosys maps adders to CARRY4 (half a CARRY8).
_CARRY_CELLS = {"CARRY8": 1.0, "CARRY4": 0.5}
_DSP_CELLS = {"DSP48E2"}
# One RAMB36E2 counts 1, one RAMB18E2 half of it.
_BRAM36_WEIGHTS = {"RAMB36E2": 1.0, "RAMB18E2": 0.5}


def parse_stat(stat):
    """Resource counts from the JSON written by Yosys' ``stat -json`` for the whole design."""
    cells = stat["design"]["num_cells_by_type"]

    def total(weights):
        value = sum(count * weights[name] for name, count in cells.items() if name in weights)
        return int(value) if float(value).is_integer() else value

    return {
        "lut": total(_LUT_CELLS),
        "ff": total(dict.fromkeys(_FF_CELLS, 1)),
        "carry": total(_CARRY_CELLS),
        "dsp": total(dict.fromkeys(_DSP_CELLS, 1)),
        "bram36": total(_BRAM36_WEIGHTS),
    }
