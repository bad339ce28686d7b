"""The Avnet Ultra96-V2 board: Amaranth platform (:mod:`.platform`), the accelerator behind an
AXI4-Lite register interface (:mod:`.axi_accelerator`, map in :mod:`.registers`), the processing
system's block design (:mod:`.block_design`), the build (:mod:`.build`) and the host driver
(:mod:`.driver`). Command line: ``python -m boards.ultra96 --help``."""
