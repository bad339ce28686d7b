"""The staged training recipe (docs/training.md §2), checkpoints and evaluation.

Three stages, each with a fresh Adam optimiser and a cosine learning-rate schedule over its
epochs (:data:`fracbnn_train.config.STAGES`); batch norm is folded and rounded to WT codes in
all of them (:class:`fracbnn_train.modules.FoldedBatchNorm`):

1. ``activations``: 2-bit activations (MSB and LSB planes) with float weights, batch norm on
   batch statistics, the gate thresholds fixed at the bottom of the WT range;
2. ``binary``: binary weights (straight-through estimator, latent weights kept in [-1, 1]);
3. ``gate`` (a quarter of the learning rate): the batch-norm statistics are re-estimated and
   frozen, so that training computes the exported arithmetic, and the gate thresholds learn,
   pulled up by the sparsity term ``sparsity * mean(sigmoid(gate score))``.

After every epoch of the first two stages the batch-norm statistics are re-estimated on
:data:`CALIBRATION_IMAGES` training images, and after every epoch the whole state (model,
optimiser, schedule, random generators, history) is written to the checkpoint, from which
``--resume`` continues.
"""

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .config import DEFAULT_EPOCHS, STAGES, TrainConfig
from .modules import FracBNNNet

__all__ = ["TrainConfig", "DEFAULT_EPOCHS", "stage_schedule", "evaluate", "predict", "train",
           "CheckpointError", "load_checkpoint"]

CHECKPOINT_VERSION = 1
# Random shifts of up to this many pixels (zero fill) when ``augment`` includes "shift".
SHIFT = 2
# Training images used to re-estimate the batch-norm statistics.
CALIBRATION_IMAGES = 1024
# The last stage fine-tunes: its learning rate is this fraction of ``lr``.
GATE_LR_SCALE = 0.25
# The gate thresholds' learning rate (they learn in the last stage only).
THRESHOLD_LR = 0.05


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not fit the run that resumes from it."""


def stage_schedule(epochs):
    """The stage of every epoch: ``[stage, ...]`` for the per-stage counts ``epochs``."""
    return [stage for stage, count in zip(STAGES, epochs) for _ in range(count)]


def _augment(pixels, mode, generator):
    """Random shifts by up to :data:`SHIFT` pixels (zero fill), and horizontal flips."""
    if mode == "none":
        return pixels
    n, _, h, w = pixels.shape
    padded = F.pad(pixels, (SHIFT,) * 4)
    dy, dx = (torch.randint(0, 2 * SHIFT + 1, (n,), generator=generator) for _ in range(2))
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]
    if mode == "shift+flip":
        flip = torch.rand(n, generator=generator) < 0.5
        cols = torch.where(flip[:, None, None, None], cols.flip(-1), cols)
    batch = torch.arange(n)[:, None, None, None]
    colour = torch.arange(pixels.shape[1])[None, :, None, None]
    return padded[batch, colour, rows, cols]


class _Progress:
    """A one-line progress bar on stderr (only on a terminal)."""

    def __init__(self, total, label, enabled):
        self.total, self.label = total, label
        self.enabled = enabled and sys.stderr.isatty()
        self.started = time.monotonic()

    def update(self, done, text):
        if not self.enabled:
            return
        width = 24
        filled = int(width * done / self.total)
        elapsed = time.monotonic() - self.started
        eta = elapsed / done * (self.total - done) if done else 0
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                         f"{done}/{self.total} {text} {elapsed:.0f}s<{eta:.0f}s ")
        sys.stderr.flush()

    def close(self):
        if self.enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def predict(net, pixels, device, batch_size=64):
    """Logits of ``net`` in evaluation mode for uint8 numpy pixels; also the gate rate.

    Evaluation mode computes the golden model's fixed-point steps, a few dozen float64
    element-wise passes per layer: batches of 64 keep a feature map in the CPU cache (measured
    on 500 digits: 256 images per batch took 1.6 times as long)."""
    net.eval()
    outputs, gated, total = [], 0.0, 0
    with torch.no_grad():
        for start in range(0, len(pixels), batch_size):
            batch = torch.from_numpy(pixels[start:start + batch_size]).to(device)
            outputs.append(net(batch).float().cpu())
            rate, _, elements = net.gate_stats()
            gated += rate * elements
            total += elements
    return torch.cat(outputs).numpy(), gated / max(total, 1)


def evaluate(net, dataset, device):
    """(accuracy, gate rate, logits) of ``net`` on ``dataset`` in evaluation mode."""
    logits, gate = predict(net, dataset.pixels, device)
    return float((logits.argmax(1) == dataset.labels).mean()), gate, logits


def _recalibrate(net, pixels, device, batch_size=256):
    """Re-estimate every batch norm's running statistics on ``pixels`` (a cumulative average)
    with the current weights. During training they trail the changing weights (momentum
    0.1), enough to spoil evaluation; this runs after every epoch of the first stages and
    before the statistics are frozen."""
    norms = net.batch_norms()
    frozen = [bn.frozen for bn in norms]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum, bn.frozen = None, False
    net.train()
    with torch.no_grad():
        for start in range(0, len(pixels), batch_size):
            net(torch.from_numpy(pixels[start:start + batch_size]).to(device))
    for bn, was_frozen in zip(norms, frozen):
        bn.momentum, bn.frozen = 0.1, was_frozen


def _optimizer(net, config, stage, epochs):
    lr = config.lr * (GATE_LR_SCALE if stage == "gate" else 1.0)
    thresholds = [conv.threshold for conv in net.pg_convs().values()]
    chosen = {id(p) for p in thresholds}
    others = [p for p in net.parameters() if id(p) not in chosen]
    # Thresholds span -8..8 and learn in one short stage: Adam's steps (about lr each) must
    # be large enough to cross that range.
    optimizer = torch.optim.Adam([{"params": others, "lr": lr},
                                  {"params": thresholds, "lr": THRESHOLD_LR}])
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    return optimizer, scheduler


def _atomic_save(state, path):
    path = Path(path)
    temporary = path.with_name(f".{path.name}.partial")
    torch.save(state, temporary)
    os.replace(temporary, path)


def load_checkpoint(path):
    """A checkpoint written by :func:`train` (a dict); :class:`CheckpointError` if unusable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:          # torch.load raises many kinds
        raise CheckpointError(f"{path}: not a readable checkpoint ({error})") from None
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: not a fracbnn_train checkpoint (version "
                              f"{CHECKPOINT_VERSION})")
    return state


@dataclass
class TrainResult:
    net: FracBNNNet
    history: list = field(default_factory=list)
    seconds: float = 0.0


def train(train_set, test_set, config, *, device="cpu", checkpoint=None, resume=False,
          log=print, progress=True):
    """Train a :class:`FracBNNNet` with the staged recipe; returns a :class:`TrainResult`.

    ``checkpoint``: a path written after every epoch (None: no checkpoint); with ``resume``
    training continues from it (its settings must equal ``config``'s).
    """
    schedule = stage_schedule(config.epochs)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    net = FracBNNNet().to(device)
    history, start_epoch, seconds = [], 0, 0.0
    optimizer = scheduler = None
    saved = None
    if resume:
        saved = load_checkpoint(checkpoint)
        if saved["config"] != config.as_dict():
            raise CheckpointError(f"{checkpoint}: written with other settings "
                                  f"({saved['config']}); resume with the same ones")
        if saved["class_names"] != list(train_set.class_names):
            raise CheckpointError(f"{checkpoint}: written for the classes "
                                  f"{saved['class_names']}, not {list(train_set.class_names)}")
        start_epoch, history, seconds = saved["epoch"] + 1, saved["history"], saved["seconds"]
        if start_epoch > 0:
            net.set_stage(schedule[start_epoch - 1])
        net.load_state_dict(saved["model"])
        generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        log(f"resuming from {checkpoint} after epoch {start_epoch} of {len(schedule)}")
    pixels = torch.from_numpy(train_set.pixels)
    # Evenly spaced training images (all classes) for re-estimating batch-norm statistics.
    calibration = train_set.pixels[np.linspace(0, len(train_set) - 1,
                                               min(len(train_set), CALIBRATION_IMAGES)).astype(int)]
    labels = torch.from_numpy(train_set.labels)
    stage_epochs = {stage: schedule.count(stage) for stage in STAGES}
    for epoch in range(start_epoch, len(schedule)):
        stage = schedule[epoch]
        new_stage = epoch == 0 or schedule[epoch - 1] != stage
        if optimizer is None or new_stage:
            net.set_stage(stage)
            if new_stage and stage == "gate":
                _recalibrate(net, calibration, device)
            optimizer, scheduler = _optimizer(net, config, stage, stage_epochs[stage])
            if saved is not None and not new_stage:
                optimizer.load_state_dict(saved["optimizer"])
                scheduler.load_state_dict(saved["scheduler"])
            saved = None
        started = time.monotonic()
        net.train()
        order = torch.randperm(len(labels), generator=generator)
        bar = _Progress(len(order), f"epoch {epoch + 1}/{len(schedule)} {stage}", progress)
        loss_sum = correct = gated = elements = 0.0
        for first in range(0, len(order), config.batch_size):
            index = order[first:first + config.batch_size]
            x = _augment(pixels[index], config.augment, generator).to(device)
            y = labels[index].to(device)
            logits = net(x)
            loss = F.cross_entropy(logits, y)
            rate, soft, count = net.gate_stats()
            if soft is not None and config.sparsity:
                loss = loss + config.sparsity * soft / count
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            net.clip_latent_weights()
            loss_sum += float(loss.detach()) * len(index)
            correct += float((logits.argmax(1) == y).sum())
            gated, elements = gated + rate * count, elements + count
            done = first + len(index)
            bar.update(done, f"loss {loss_sum / done:.3f} acc {100 * correct / done:.1f}%")
        bar.close()
        scheduler.step()
        if stage != "gate":
            _recalibrate(net, calibration, device)
        test_acc, test_gate, _ = evaluate(net, test_set, device)
        seconds += time.monotonic() - started
        record = {"epoch": epoch + 1, "stage": stage, "loss": loss_sum / len(order),
                  "train_accuracy": correct / len(order), "train_gate_rate": gated / elements,
                  "test_accuracy": test_acc, "test_gate_rate": test_gate,
                  "seconds": time.monotonic() - started}
        history.append(record)
        log(f"epoch {epoch + 1:>2}/{len(schedule)} {stage:<11} loss {record['loss']:.4f}  "
            f"train {100 * record['train_accuracy']:5.1f}%  test {100 * test_acc:5.1f}%  "
            f"gate {100 * test_gate:5.1f}%  {record['seconds']:.0f} s")
        if checkpoint is not None:
            _atomic_save({"version": CHECKPOINT_VERSION, "epoch": epoch,
                          "config": config.as_dict(),
                          "class_names": list(train_set.class_names),
                          "model": net.state_dict(), "optimizer": optimizer.state_dict(),
                          "scheduler": scheduler.state_dict(),
                          "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
                          "history": history, "seconds": seconds}, checkpoint)
    net.eval()
    return TrainResult(net, history, seconds)
