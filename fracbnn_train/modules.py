"""The FracBNN CIFAR-10 network as PyTorch modules, for quantisation-aware training
(docs/training.md §1).

Every module has two arithmetics. **In training mode** it computes a differentiable float
surrogate of the golden model (:mod:`fracbnn_golden.layers`, docs/architecture.md §2) with the
parameters the model file will hold:

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
* batch norm folded into the scale and bias the model file holds, rounded to WT codes
  (:class:`FoldedBatchNorm`);
* RPReLU (shift, PReLU, shift) with WT-rounded parameters (:class:`RPReLU`);
* the residual add, the stride-2 shortcut (2x2 average, channels duplicated), the 8x8 global
  pool and the linear layer (weights rounded to WT, then to FM as the golden model does).

Intermediate values stay unrounded floats there. **In evaluation mode** (``net.eval()``) the
same modules compute the golden model's fixed-point arithmetic step by step: every assignment
the golden model rounds to FM is rounded half up to 1/128 and saturated (:func:`fm_round`),
the pools truncate and saturate where it does, and the gate compares integers. Values are
float64 tensors holding exact binary fractions (every intermediate is a code of at most 32 bits,
well inside float64's 53-bit significand), so evaluation mode equals the golden model running
the exported file bit for bit (docs/training.md §4). :mod:`fracbnn_train.export` writes
the parameters. Constants (formats, the 2/3 and 1/3 literals, the topology) are imported from
the golden model.
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

__all__ = ["WT_SCALE", "FM_LOW", "FM_HIGH", "wt_codes", "wt_values", "fake_wt", "fake_linear_wt",
           "threshold_codes", "binary_signs", "binarize", "activation_planes", "thermometer",
           "saturate_fm", "fm_round", "shortcut", "global_pool",
           "BinaryConv", "PGConv", "FoldedBatchNorm", "RPReLU", "FracBNNNet", "STAGES",
           "GATE_TEMPERATURE", "THRESHOLD_INIT"]

WT_SCALE = 1 << WT_FRAC
FM_SCALE = 1 << FM_FRAC
POOL_SCALE = 1 << POOL_FRAC
FM_LOW, FM_HIGH = FM_MIN / FM_SCALE, FM_MAX / FM_SCALE          # FM range as values
POOL_LOW = -(1 << (POOL_BITS - 1)) / POOL_SCALE                 # POOL range as values
POOL_HIGH = ((1 << (POOL_BITS - 1)) - 1) / POOL_SCALE
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


def wt_values(value):
    """``value`` rounded to WT codes, as values (``code / 256``) in float64: exactly the
    parameters of the exported file, for the fixed-point arithmetic of evaluation mode."""
    return wt_codes(value.detach()).double() / WT_SCALE


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


def binary_signs(weight):
    """``+1 where weight >= 0, else -1`` (bit 1 of the model file is +1), no gradient."""
    return torch.where(weight >= 0, 1.0, -1.0).to(weight.dtype)


def binarize(weight):
    """Binary weights :func:`binary_signs`; the straight-through estimator passes the gradient
    where ``|weight| <= 1`` (zero outside)."""
    return _straight_through(weight, binary_signs(weight), -1.0, 1.0)


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
    """The training surrogate's saturation: clamp to the FM range when no gradient is recorded
    (the batch-norm calibration passes). While training the value passes unchanged: saturation
    is rare, and six clamps per PG conv with their masked gradients cost more time than they
    are worth."""
    return x if torch.is_grad_enabled() else x.clamp(FM_LOW, FM_HIGH)


def fm_round(x):
    """An assignment to FM in evaluation mode, the golden model's ``to_fm``: round half up to a
    multiple of 1/128, then saturate to the FM range. ``x``: float64 values that are exact
    binary fractions, so the result is exact too."""
    # In place on one new tensor: evaluation is memory-bound, and allocations cost as much.
    return (x * FM_SCALE).add_(0.5).floor_().clamp_(FM_MIN, FM_MAX).mul_(1 / FM_SCALE)


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
    as they are (``binary = False``) or binarised (``binary = True``). Binary convolutions of
    ±1 inputs give integer sums (at most 864), which float32 holds exactly."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.stride = stride
        self.weight = nn.Parameter(torch.empty(cout, cin, KERNEL, KERNEL))
        self.binary = False
        _init_latent(self.weight)

    def effective_weight(self):
        if not self.binary:
            return self.weight
        return binarize(self.weight) if self.training else binary_signs(self.weight)

    def forward(self, x):
        return F.conv2d(x, self.effective_weight(), stride=self.stride, padding=1)


class PGConv(BinaryConv):
    """A precision-gated convolution: 2-bit input, two binary convolutions (MSB and LSB planes)
    and the gate. Returns the merged sum ``171/256 * msb + 85/256 * gate * lsb`` (sums
    saturated to FM, as the golden model's merge does); in evaluation mode with the golden
    merge's two roundings to FM (:meth:`fixed_point_merge`).

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
        weight = self.effective_weight()
        # In evaluation mode x holds float64 FM values, exact in float32 too (16-bit codes):
        # the quantiser and the convolution run in the weights' float32.
        sums = F.conv2d(activation_planes(x.to(weight.dtype)), weight, stride=self.stride,
                        padding=1)
        msb, lsb = sums.chunk(2)
        if not self.training:
            return self.fixed_point_merge(msb, lsb)
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

    def fixed_point_merge(self, msb, lsb):
        """The golden merge's first two assignments (docs/architecture.md §2.8) on the integer
        sums: the gate ``171 * msb > threshold code`` (integers, exact in float32), the sums
        saturated to FM, ``t0 = Q(171/256 * msb)``, then ``Q(t0 + 85/256 * gate * lsb)``."""
        gate = TWO_THIRDS * msb > threshold_codes(self.threshold.detach())[None, :, None, None]
        self.gate_soft = None
        self.gate_count, self.gate_total = gate.sum(), gate.numel()
        msb = msb.double().clamp(FM_LOW, FM_HIGH)
        lsb = torch.where(gate, lsb.double(), 0.0).clamp(FM_LOW, FM_HIGH)
        return fm_round(fm_round(MSB_SCALE * msb) + LSB_SCALE * lsb)


class FoldedBatchNorm(nn.BatchNorm2d):
    """Batch norm folded into the model file's ``y = scale * x + bias``, both WT codes, in
    training too (quantisation-aware: the network learns with the gains it will have).

    ``scale = gamma / sqrt(var + eps)``, ``bias = beta - scale * mean``, each rounded to a WT
    code with straight-through gradients. While training with ``frozen = False`` the mean and
    variance are the batch's (and update the running statistics, as batch norm does); in
    evaluation mode, and while training with ``frozen = True``, they are the running
    statistics: the exported codes. In evaluation mode the result is rounded to FM as the
    golden model's ``Q(scale * x + bias)`` (float64 in, float64 out).
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
        elif not self.training:
            scale, bias = (wt_values(value)[None, :, None, None] for value in self.folded())
            return fm_round(torch.addcmul(bias, x.double(), scale))
        else:
            scale, bias = self.folded()
        return x * fake_wt(scale)[None, :, None, None] + fake_wt(bias)[None, :, None, None]


class RPReLU(nn.Module):
    """``y = prelu(x + shift_x, alpha) + shift_y`` per channel (ReActNet's RPReLU), with the
    three parameters rounded to WT codes and the golden model's saturation; in evaluation
    mode each of the three steps is rounded to FM, as in the golden merge."""

    def __init__(self, channels):
        super().__init__()
        self.shift_x_bias = nn.Parameter(torch.zeros(channels))
        self.prelu_weight = nn.Parameter(torch.full((channels,), 0.25))
        self.shift_y_bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        if not self.training:
            # Q(x + shift) for x on the FM grid (128 x an integer) is x + Q(shift), saturated:
            # the shifts are rounded once per channel instead of once per element.
            bx, by = (fm_round(wt_values(p))[None, :, None, None]
                      for p in (self.shift_x_bias, self.shift_y_bias))
            x = (x + bx).clamp_(FM_LOW, FM_HIGH)
            x = fm_round(F.prelu(x, wt_values(self.prelu_weight)))
            return x.add_(by).clamp_(FM_LOW, FM_HIGH)
        bx, by = (fake_wt(p)[None, :, None, None] for p in (self.shift_x_bias, self.shift_y_bias))
        alpha = fake_wt(self.prelu_weight)
        x = saturate_fm(F.prelu(saturate_fm(x + bx), alpha))
        return saturate_fm(x + by)


def _saturating_sum(terms, low, high, saturate):
    """``sat(...sat(sat(t0 + t1) + t2)...)``: the golden model's saturating accumulation
    (a plain sum unless ``saturate``)."""
    total = terms[0]
    for term in terms[1:]:
        total = total + term
        if saturate:
            total = total.clamp(low, high)
    return total


def shortcut(x, fixed_point=False):
    """The stride-2 shortcut (docs/architecture.md §2.9): 2x2 average with saturating adds,
    channels duplicated. With ``fixed_point`` (evaluation mode: float64 FM values) the sum's
    FM code is divided by 4 truncating toward zero, as the golden model does."""
    window = [x[:, :, dy::2, dx::2] for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1))]
    total = _saturating_sum(window, FM_LOW, FM_HIGH,
                            fixed_point or not torch.is_grad_enabled())
    pooled = torch.trunc(total * (FM_SCALE / 4)) / FM_SCALE if fixed_point else total / 4
    return torch.cat([pooled, pooled], dim=1)


def global_pool(x, fixed_point=False):
    """The 8x8 average (§2.10): positions summed row-major, saturating to the POOL range.
    With ``fixed_point`` (evaluation mode: float64 FM values) the sum's POOL code (22 fraction
    bits) is divided truncating toward zero and assigned to FM, as the golden model does."""
    flat = x.flatten(2)
    positions = flat.shape[-1]
    if fixed_point:
        total = _saturating_sum(flat.unbind(-1), POOL_LOW, POOL_HIGH, True)
        return fm_round(torch.trunc(total * (POOL_SCALE / positions)) / POOL_SCALE)
    total = (flat.sum(-1) if torch.is_grad_enabled()
             else _saturating_sum(flat.unbind(-1), POOL_LOW, POOL_HIGH, True))
    return saturate_fm(total / positions)


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
        ``bn{k+2}(rprelu{k}(bn{k}(conv{k}(x))) + shortcut(x))``. In evaluation mode: the
        golden model's merge, float64 FM values in and out."""
        k = spec.index
        conv, bn, rprelu, bn_out = (getattr(self, name) for name in (f"conv{k}", f"bn{k}",
                                                                     f"rprelu{k}", f"bn{k + 2}"))
        if not self.training:
            x = x.double()
            residual = shortcut(x, fixed_point=True) if spec.stride == 2 else x
            return bn_out((residual + rprelu(bn(conv(x)))).clamp(FM_LOW, FM_HIGH))
        residual = shortcut(x) if spec.stride == 2 else x
        y = rprelu(saturate_fm(bn(conv(x))))
        return saturate_fm(bn_out(saturate_fm(residual + y)))

    def forward(self, x):
        for spec in self.specs:
            x = self.half(spec, x)
        return x


class FracBNNNet(nn.Module):
    """The FracBNN CIFAR-10 network (docs/architecture.md §1) for training.

    Takes uint8 pixels ``[N, 3, 32, 32]`` and returns float logits ``[N, 10]`` (logit values,
    the golden model's codes / 128); in evaluation mode float64, exactly the golden model's
    logits of the exported file. The submodules are named like the model file's keys
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
        return global_pool(x, fixed_point=not self.training)

    def head(self, features):
        """The linear layer with the golden model's parameter rounding: logits ``[N, 10]``.
        In evaluation mode in the golden model's order, ``y = Q(b)``, then
        ``y = Q(y + x[c] * w[c])`` for each channel ``c`` (docs/architecture.md §2.10)."""
        if self.training:
            weight, bias = fake_linear_wt(self.linear.weight), fake_linear_wt(self.linear.bias)
            return saturate_fm(F.linear(features, weight, bias))
        weight, bias = (linear_codes(p.detach()).double() / FM_SCALE
                        for p in (self.linear.weight, self.linear.bias))
        features = features.double()
        logits = bias.expand(len(features), -1)
        for channel in range(features.shape[1]):
            logits = fm_round(logits + features[:, channel, None] * weight[None, :, channel])
        return logits

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
