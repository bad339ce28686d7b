"""Published reference figures the benchmarks compare with (not measurements of this project)."""

# The official FracBNN accelerator on the same chip, as the paper reports it (DESIGN.md §4).
PAPER = {"images_per_s": 2807, "cycles_per_image": 89_000, "lut": 51_444, "clock_mhz": 250,
         "bmac_lanes": 9216}

# LUTs of the target device, the Zynq UltraScale+ xczu3eg on the Ultra96-V2 (DESIGN.md, target
# board): a design above this does not fit.
XCZU3EG_LUTS = 70_560
