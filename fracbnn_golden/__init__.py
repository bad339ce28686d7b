"""Bit-exact NumPy golden model of the FracBNN CIFAR-10 accelerator."""

from .model import CLASSES, FracBNN, ModelFormatError

__all__ = ["FracBNN", "ModelFormatError", "CLASSES"]
