"""Training settings and their defaults (no PyTorch needed, so that the command line can check
its arguments before importing it)."""

import math
from dataclasses import asdict, dataclass

__all__ = ["STAGES", "DEFAULT_EPOCHS", "AUGMENTS", "TrainConfig"]

# The training stages (docs/training.md §2), in order.
STAGES = ("activations", "binary", "gate")
DEFAULT_EPOCHS = (2, 6, 2)         # per stage
AUGMENTS = ("none", "shift", "shift+flip")


@dataclass
class TrainConfig:
    """Training settings (``python -m fracbnn_train --help`` explains each)."""
    epochs: tuple = DEFAULT_EPOCHS
    batch_size: int = 64
    lr: float = 2e-3
    sparsity: float = 0.05
    augment: str = "shift"
    seed: int = 0

    def __post_init__(self):
        self.epochs = tuple(int(e) for e in self.epochs)
        if len(self.epochs) != len(STAGES) or min(self.epochs) < 0 or sum(self.epochs) < 1:
            raise ValueError(f"epochs must be {len(STAGES)} counts >= 0 (one per stage: "
                             f"{', '.join(STAGES)}) with at least one epoch, not {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, not {self.lr}")
        if not (self.sparsity >= 0 and math.isfinite(self.sparsity)):
            raise ValueError(f"sparsity must be a number >= 0, not {self.sparsity}")
        if self.augment not in AUGMENTS:
            raise ValueError(f"augment must be one of {', '.join(AUGMENTS)}, not "
                             f"{self.augment!r}")

    def as_dict(self):
        """JSON-friendly settings (epochs as a list)."""
        return asdict(self) | {"epochs": list(self.epochs)}
