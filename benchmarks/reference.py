"""Published reference figures the benchmarks compare with (not measurements of this project)."""

# The official FracBNN accelerator on the same chip, as the paper reports it
# (docs/architecture.md §9.1).
PAPER = {"images_per_s": 2807, "cycles_per_image": 89_000, "lut": 51_444, "clock_mhz": 250,
         "bmac_lanes": 9216}

# LUTs of the target device, the Zynq UltraScale+ xczu3eg on the Ultra96-V2
# (docs/architecture.md §9.2): a design above this does not fit.
XCZU3EG_LUTS = 70_560
