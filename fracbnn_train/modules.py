"""The FracBNN CIFAR-10 network as PyTorch modules, for quantisation-aware training
(docs/training.md §1).

The modules compute what the golden model computes (:mod:`fracbnn_golden.layers`,
docs/architecture.md §2) in floating point, with the parameters the model file will hold:

* the thermometer input of :func:`fracbnn_golden.conv.thermometer_bits` (32 levels per colour,
  the golden model's round-half-even), as ±1 values;
* binary weights ``+1 where w >= 0, else -1`` with a straight-through estimator (the latent
  float weights get the gradient where ``|w| <= 1``; :func:`binarize`);
* 2-bit activations ``q = clamp(floor((x + 1) * 1.5 + 1/2), 0, 3)``, decomposed into the ±1 MSB
  and LSB planes with ``(2q - 3) / 3 = 2/3 msb + 1/3 lsb``; both planes pass the gradient of the
  clipped identity (:func:`activation_planes`);
* the precision gate ``171/256 * msb_sum > tau`` with a learnable per-channel threshold ``tau``
  on the WT grid: the forward pass uses the hard gate, the backward pass the gradient of
  ``sigmoid((171/256 * msb_sum - tau) / T)``, whose mean is the sparsity term (:class:`PGConv`);
* batch norm, which in evaluation mode (and in the last training stage) is folded into the scale
  and bias the model file holds, rounded to WT codes (:class:`FoldedBatchNorm`);
* RPReLU (shift, PReLU, shift) with WT-rounded parameters (:class:`RPReLU`);
* the residual add, the stride-2 shortcut (2x2 average, channels duplicated), the 8x8 global
  pool and the linear layer (weights rounded to WT, then to FM as the golden model does), with
  the golden model's saturation at the same places.

So a model in evaluation mode computes the golden model's function up to the rounding of
intermediate values (docs/training.md §3); :mod:`fracbnn_train.export` writes its parameters.
Constants (formats, the 2/3 and 1/3 literals, the topology) are imported from the golden model.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fracbnn_golden.conv import KERNEL, THERMOMETER_BITS, thermometer_bits
from fracbnn_golden.fixedpoint import (
    FM_FRAC,
    FM_MAX,
    FM_MIN,
    POOL_BITS,
    POOL_FRAC,
    WT_FRAC,
    WT_MAX,
    WT_MIN,
)
from fracbnn_golden.layers import ONE_AND_HALF, ONE_THIRD, TWO_THIRDS
from fracbnn_golden.model import CLASSES, IMAGE_SHAPE, INPUT_CHANNELS, PG_CONVS, STEM_CHANNELS

from .config import STAGES

__all__ = ["WT_SCALE", "FM_LOW", "FM_HIGH", "wt_codes", "fake_wt", "fake_linear_wt",
           "threshold_codes", "binarize", "activation_planes", "thermometer", "saturate_fm",
           "BinaryConv", "PGConv", "FoldedBatchNorm", "RPReLU", "FracBNNNet", "STAGES",
           "GATE_TEMPERATURE", "THRESHOLD_INIT"]

WT_SCALE = 1 << WT_FRAC
FM_SCALE = 1 << FM_FRAC
FM_LOW, FM_HIGH = FM_MIN / FM_SCALE, FM_MAX / FM_SCALE          # FM range as values
POOL_LOW, POOL_HIGH = -(1 << (POOL_BITS - 1)) / (1 << POOL_FRAC), \
    ((1 << (POOL_BITS - 1)) - 1) / (1 << POOL_FRAC)
# The merge's literals as values: 171/256 (2/3), 85/256 (1/3), 384/256 (1.5).
MSB_SCALE = TWO_THIRDS / WT_SCALE
LSB_SCALE = ONE_THIRD / WT_SCALE
QUANT_SLOPE = ONE_AND_HALF / WT_SCALE
# The gate's soft surrogate: sigmoid((171/256 * msb_sum - tau) / T), T in units of the sum.
GATE_TEMPERATURE = 2.0
# Thresholds start at the bottom of the WT range: the gate passes all but very negative sums.
THRESHOLD_INIT = WT_MIN / WT_SCALE


# --- quantisers with straight-through gradients ---------------------------------------------

def wt_codes(value):
    """Float values -> WT codes (float tensor of integers): round half up, saturate."""
    return torch.floor(value * WT_SCALE + 0.5).clamp(WT_MIN, WT_MAX)


def _straight_through(value, quantized, low, high):
    """``quantized`` in the forward pass; the gradient of ``value`` clamped to [low, high]."""
    clipped = value.clamp(low, high)
    return clipped + (quantized - clipped).detach()


def fake_wt(value):
    """``value`` rounded to a WT code (round half up, saturation) with a straight-through
    gradient inside the WT range."""
    return _straight_through(value, wt_codes(value) / WT_SCALE, WT_MIN / WT_SCALE,
                             WT_MAX / WT_SCALE)


def linear_codes(value):
    """The linear layer's parameters as the golden model uses them: WT codes re-rounded to FM
    (7 fraction bits, round half up), as FM codes."""
    return torch.floor(wt_codes(value) / (1 << (WT_FRAC - FM_FRAC)) + 0.5)


def fake_linear_wt(value):
    """``value`` rounded as :func:`linear_codes`, straight-through gradient."""
    return _straight_through(value, linear_codes(value) / FM_SCALE, WT_MIN / WT_SCALE,
                             WT_MAX / WT_SCALE)


def threshold_codes(tau):
    """Gate thresholds -> WT codes: ``floor(256 * tau)``, saturated.

    The gate is ``171 * msb_sum > code`` with an integer left side, so ``171 * m > 256 * tau``
    iff ``171 * m > floor(256 * tau)``: rounding down is exact, rounding to nearest is not.
    """
    return torch.floor(tau * WT_SCALE).clamp(WT_MIN, WT_MAX)


def binarize(weight):
    """Binary weights ``+1 where weight >= 0, else -1``; the straight-through estimator passes
    the gradient where ``|weight| <= 1`` (zero outside)."""
    signs = torch.where(weight >= 0, 1.0, -1.0).to(weight.dtype)
    return _straight_through(weight, signs, -1.0, 1.0)


class _Planes(torch.autograd.Function):
    """The MSB and LSB planes of 2-bit activations, concatenated along the batch axis; the
    backward pass is the straight-through estimator (one saved mask, no graph of small ops)."""

    @staticmethod
    def forward(ctx, x):
        q = torch.floor((x + 1) * QUANT_SLOPE + 0.5).clamp_(0, 3)
        msb = (q >= 2).to(x.dtype)
        lsb = q.sub_(2 * msb)
        ctx.save_for_backward((x >= -1) & (x <= 1))
        return torch.cat([msb.mul_(2).sub_(1), lsb.mul_(2).sub_(1)])

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        grad_msb, grad_lsb = grad.chunk(2)
        return (grad_msb + grad_lsb) * inside


def activation_planes(x):
    """2-bit activations of FM values ``x`` ``[N, C, H, W]``: the ±1 MSB and LSB planes,
    concatenated ``[2N, C, H, W]`` (MSB first).

    ``q = clamp(floor((x + 1) * 1.5 + 1/2), 0, 3)`` (docs/architecture.md §2.6),
    ``msb = q >> 1``, ``lsb = q & 1``, as ±1 (bit 1 = +1). Each plane passes the gradient of
    ``clamp(x, -1, 1)``, the straight-through estimator of ``(2q - 3) / 3``.
    """
    return _Planes.apply(x)


def saturate_fm(x):
    """Clamp to the FM range, as every assignment in the golden model does, when no gradient
    is recorded (evaluation, export checks). While training the value passes unchanged:
    saturation is rare, and six clamps per PG conv with their masked gradients cost more time
    than they are worth."""
    return x if torch.is_grad_enabled() else x.clamp(FM_LOW, FM_HIGH)


# The thermometer code of every pixel value, from the golden model: [256, 32] ±1.
_THERMOMETER = torch.from_numpy(
    2.0 * thermometer_bits(np.arange(256, dtype=np.uint8).reshape(1, 1, 256, 1))
    .reshape(THERMOMETER_BITS, 256).T - 1).float()


def thermometer(pixels):
    """uint8 pixels ``[N, 3, H, W]`` -> ±1 float ``[N, 96, H, W]``, channel ``c * 32 + k``
    (the golden model's :func:`~fracbnn_golden.conv.thermometer_bits`)."""
    if pixels.dtype != torch.uint8:
        raise TypeError(f"pixels must be a uint8 tensor, not {pixels.dtype}")
    n, colours, h, w = pixels.shape
    table = _THERMOMETER.to(pixels.device)
    bits = table[pixels.long()]                                     # [N, C, H, W, 32]
    return bits.permute(0, 1, 4, 2, 3).reshape(n, colours * THERMOMETER_BITS, h, w)


# --- layers ---------------------------------------------------------------------------------

def _init_latent(weight):
    # Small latent weights: kaiming-uniform for the float stage, well inside the STE's [-1, 1].
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))


class BinaryConv(nn.Module):
    """A 3x3 convolution, zero padding 1, with latent float weights ``[Cout, Cin, 3, 3]`` used
    as they are (``binary = False``) or binarised (``binary = True``)."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.stride = stride
        self.weight = nn.Parameter(torch.empty(cout, cin, KERNEL, KERNEL))
        self.binary = False
        _init_latent(self.weight)

    def effective_weight(self):
        return binarize(self.weight) if self.binary else self.weight

    def forward(self, x):
        return F.conv2d(x, self.effective_weight(), stride=self.stride, padding=1)


class PGConv(BinaryConv):
    """A precision-gated convolution: 2-bit input, two binary convolutions (MSB and LSB planes)
    and the gate. Returns the merged sum ``171/256 * msb + 85/256 * gate * lsb`` (sums
    saturated to FM, as the golden model's merge does).

    ``threshold`` (tau, per output channel) is used on the WT grid (:func:`threshold_codes`);
    it learns only when ``train_gate`` is set. After each forward pass ``gate_soft`` holds the
    sum of the soft gate (the sparsity term's share) and ``gate_count``/``gate_total`` the hard
    gate's counts.
    """

    def __init__(self, cin, cout, stride=1):
        super().__init__(cin, cout, stride)
        self.threshold = nn.Parameter(torch.full((cout,), THRESHOLD_INIT))
        self.train_gate = False
        self.gate_soft = self.gate_count = self.gate_total = None

    def effective_threshold(self):
        tau = self.threshold
        low, high = WT_MIN / WT_SCALE, WT_MAX / WT_SCALE
        return _straight_through(tau, threshold_codes(tau) / WT_SCALE, low, high)

    def forward(self, x):
        sums = F.conv2d(activation_planes(x), self.effective_weight(), stride=self.stride,
                        padding=1)
        msb, lsb = sums.chunk(2)
        tau = self.effective_threshold()
        if not self.train_gate:
            tau = tau.detach()
        score = MSB_SCALE * msb - tau[None, :, None, None]
        hard = (score > 0).to(x.dtype)
        soft = torch.sigmoid(score / GATE_TEMPERATURE)
        gate = hard + (soft - soft.detach()) if self.train_gate else hard
        self.gate_soft = soft.sum() if self.train_gate else None
        self.gate_count, self.gate_total = hard.sum().detach(), hard.numel()
        return MSB_SCALE * saturate_fm(msb) + LSB_SCALE * gate * saturate_fm(lsb)


class FoldedBatchNorm(nn.BatchNorm2d):
    """Batch norm folded into the model file's ``y = scale * x + bias``, both WT codes, in
    training too (quantisation-aware: the network learns with the gains it will have).

    ``scale = gamma / sqrt(var + eps)``, ``bias = beta - scale * mean``, each rounded to a WT
    code with straight-through gradients. While training with ``frozen = False`` the mean and
    variance are the batch's (and update the running statistics, as batch norm does); in
    evaluation mode, and while training with ``frozen = True``, they are the running
    statistics: the exported arithmetic.
    """

    def __init__(self, channels):
        super().__init__(channels)
        self.frozen = False

    def folded(self, mean=None, var=None):
        """The float (scale, bias) before rounding (default: from the running statistics)."""
        mean = self.running_mean if mean is None else mean
        var = self.running_var if var is None else var
        scale = self.weight / torch.sqrt(var + self.eps)
        return scale, self.bias - scale * mean

    def forward(self, x):
        if self.training and not self.frozen:
            dims = (0, 2, 3)
            mean, var = x.mean(dims), x.var(dims, unbiased=False)
            with torch.no_grad():
                self.num_batches_tracked += 1
                factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                          else self.momentum)
                count = x.numel() / x.shape[1]
                self.running_mean.lerp_(mean, factor)
                self.running_var.lerp_(var * count / max(count - 1, 1), factor)
            scale, bias = self.folded(mean, var)
        else:
            scale, bias = self.folded()
        return x * fake_wt(scale)[None, :, None, None] + fake_wt(bias)[None, :, None, None]


class RPReLU(nn.Module):
    """``y = prelu(x + shift_x, alpha) + shift_y`` per channel (ReActNet's RPReLU), with the
    three parameters rounded to WT codes and the golden model's saturation."""

    def __init__(self, channels):
        super().__init__()
        self.shift_x_bias = nn.Parameter(torch.zeros(channels))
        self.prelu_weight = nn.Parameter(torch.full((channels,), 0.25))
        self.shift_y_bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        bx, by = (fake_wt(p)[None, :, None, None] for p in (self.shift_x_bias, self.shift_y_bias))
        alpha = fake_wt(self.prelu_weight)
        x = saturate_fm(F.prelu(saturate_fm(x + bx), alpha))
        return saturate_fm(x + by)


def _saturating_sum(terms, low, high):
    """``sat(...sat(sat(t0 + t1) + t2)...)``: the golden model's saturating accumulation
    (a plain sum while training, as :func:`saturate_fm`)."""
    total = terms[0]
    for term in terms[1:]:
        total = total + term
        if not torch.is_grad_enabled():
            total = total.clamp(low, high)
    return total


def shortcut(x):
    """The stride-2 shortcut (docs/architecture.md §2.9): 2x2 average with saturating adds,
    channels duplicated."""
    window = [x[:, :, dy::2, dx::2] for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1))]
    pooled = _saturating_sum(window, FM_LOW, FM_HIGH) / 4
    return torch.cat([pooled, pooled], dim=1)


def global_pool(x):
    """The 8x8 average (§2.10): positions summed row-major, saturating to the POOL range."""
    flat = x.flatten(2)
    total = (flat.sum(-1) if torch.is_grad_enabled()
             else _saturating_sum(flat.unbind(-1), POOL_LOW, POOL_HIGH))
    return saturate_fm(total / flat.shape[-1])


class _Block(nn.Module):
    """One block ``layer{L}_{b}``: its two PG convs with their merges (module names are the
    model file's keys)."""

    def __init__(self, convs):
        super().__init__()
        for spec in convs:
            k = spec.index
            self.add_module(f"conv{k}", PGConv(spec.cin, spec.cout, spec.stride))
            self.add_module(f"bn{k}", FoldedBatchNorm(spec.cout))
            self.add_module(f"rprelu{k}", RPReLU(spec.cout))
            self.add_module(f"bn{k + 2}", FoldedBatchNorm(spec.cout))
        self.specs = convs

    def half(self, spec, x):
        """One PG conv with its merge (``spec``: its :class:`~fracbnn_golden.model.ConvSpec`):
        ``bn{k+2}(rprelu{k}(bn{k}(conv{k}(x))) + shortcut(x))``."""
        k = spec.index
        residual = shortcut(x) if spec.stride == 2 else x
        y = saturate_fm(getattr(self, f"bn{k}")(getattr(self, f"conv{k}")(x)))
        y = getattr(self, f"rprelu{k}")(y)
        return saturate_fm(getattr(self, f"bn{k + 2}")(saturate_fm(residual + y)))

    def forward(self, x):
        for spec in self.specs:
            x = self.half(spec, x)
        return x


class FracBNNNet(nn.Module):
    """The FracBNN CIFAR-10 network (docs/architecture.md §1) for training.

    Takes uint8 pixels ``[N, 3, 32, 32]`` and returns float logits ``[N, 10]`` (logit values,
    the golden model's codes / 128). The submodules are named like the model file's keys
    (``conv1``, ``bn1``, ``layer1_0.conv1``, ..., ``linear``). :meth:`set_stage` switches the
    training stage (:data:`STAGES`).
    """

    def __init__(self):
        super().__init__()
        self.conv1 = BinaryConv(INPUT_CHANNELS, STEM_CHANNELS)
        self.bn1 = FoldedBatchNorm(STEM_CHANNELS)
        blocks = {}
        for spec in PG_CONVS:
            blocks.setdefault(spec.block, []).append(spec)
        for name, specs in blocks.items():
            self.add_module(name, _Block(specs))
        self.block_names = list(blocks)
        self.linear = nn.Linear(PG_CONVS[-1].cout, len(CLASSES))
        self.stage = STAGES[0]

    def pg_convs(self):
        """``{name: PGConv}`` in network order (``layer1_0.conv1``, ...)."""
        return {spec.name: getattr(getattr(self, spec.block), f"conv{spec.index}")
                for spec in PG_CONVS}

    def binary_convs(self):
        """Every binary convolution: ``conv1`` and the PG convs."""
        return {"conv1": self.conv1, **self.pg_convs()}

    def batch_norms(self):
        return [module for module in self.modules() if isinstance(module, FoldedBatchNorm)]

    def set_stage(self, stage):
        """``"activations"``: 2-bit activations, float weights, fixed thresholds, batch
        statistics; ``"binary"``: binary weights too; ``"gate"``: the thresholds learn and
        batch norm is frozen and folded into WT codes (the exported arithmetic)."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}, expected one of {', '.join(STAGES)}")
        index = STAGES.index(stage)
        for conv in self.binary_convs().values():
            conv.binary = index >= 1
        for conv in self.pg_convs().values():
            conv.train_gate = index >= 2
        for bn in self.batch_norms():
            bn.frozen = index >= 2
        self.stage = stage

    def features(self, pixels):
        """The pooled features ``[N, 64]`` (FM values) that the linear layer classifies."""
        if pixels.ndim != 4 or tuple(pixels.shape[1:]) != IMAGE_SHAPE:
            raise ValueError(f"pixels must have shape [N, 3, 32, 32], not {list(pixels.shape)}")
        x = saturate_fm(self.bn1(self.conv1(thermometer(pixels))))
        for name in self.block_names:
            x = getattr(self, name)(x)
        return global_pool(x)

    def head(self, features):
        """The linear layer with the golden model's parameter rounding: logits ``[N, 10]``."""
        weight, bias = fake_linear_wt(self.linear.weight), fake_linear_wt(self.linear.bias)
        return saturate_fm(F.linear(features, weight, bias))

    def forward(self, pixels):
        return self.head(self.features(pixels))

    def gate_stats(self):
        """(hard gate rate, soft gate sum or None, elements) of the last forward pass over
        every PG conv."""
        convs = self.pg_convs().values()
        total = sum(conv.gate_total for conv in convs)
        rate = float(sum(conv.gate_count for conv in convs)) / total
        soft = [conv.gate_soft for conv in convs if conv.gate_soft is not None]
        return rate, (sum(soft) if soft else None), total

    def clip_latent_weights(self):
        """Keep the latent binary weights in [-1, 1], where the estimator passes gradients."""
        with torch.no_grad():
            for conv in self.binary_convs().values():
                if conv.binary:
                    conv.weight.clamp_(-1.0, 1.0)
            for conv in self.pg_convs().values():
                conv.threshold.clamp_(WT_MIN / WT_SCALE, WT_MAX / WT_SCALE)
