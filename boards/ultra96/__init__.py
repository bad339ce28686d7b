"""The Avnet Ultra96-V2 board: Amaranth platform (:mod:`.platform`), the accelerator behind an
AXI4-Lite register interface (:mod:`.axi_accelerator`, map in :mod:`.registers`) with a batch
engine on the PS's HP0 port (:mod:`.dma`), the processing system's block design
(:mod:`.block_design`), the build (:mod:`.build`), the host driver (:mod:`.driver`, with the
memory-backed stand-in :mod:`.standin`) and the simulation of the whole board path
(:mod:`.simulate`). Command line: ``python -m boards.ultra96 --help``."""
