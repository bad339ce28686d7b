"""fracbnn_train's PyTorch modules against the golden model: the quantisers, the
straight-through estimators' gradients, and the export round trip (PyTorch -> .npz -> golden
model). Skipped without PyTorch (the ``train`` extra; ``nox -s train_tests``)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fracbnn_golden import FracBNN, ModelFormatError  # noqa: E402
from fracbnn_golden.conv import thermometer_bits  # noqa: E402
from fracbnn_golden.fixedpoint import FM_FRAC, WT_MAX, WT_MIN, round_shift, saturate  # noqa: E402
from fracbnn_golden.layers import bit_planes, precision_gate, quantize  # noqa: E402
from fracbnn_golden.model import CLASS_NAMES_KEY, EXPECTED_ARRAYS, PG_CONVS  # noqa: E402
from fracbnn_train.export import golden_model, model_params, write_model  # noqa: E402
from fracbnn_train.modules import (  # noqa: E402
    MSB_SCALE,
    FoldedBatchNorm,
    FracBNNNet,
    activation_planes,
    binarize,
    fake_linear_wt,
    fake_wt,
    thermometer,
    threshold_codes,
    wt_codes,
)


def test_thermometer_is_the_golden_models():
    pixels = np.random.default_rng(0).integers(0, 256, (3, 3, 5, 7), dtype=np.uint8)
    pixels[0, 0, 0, :4] = [0, 4, 12, 255]          # round-half-even cases and the ends
    bits = thermometer(torch.from_numpy(pixels)).numpy()
    assert set(np.unique(bits)) == {-1.0, 1.0}
    assert np.array_equal(bits, 2.0 * thermometer_bits(pixels) - 1)
    with pytest.raises(TypeError, match="uint8"):
        thermometer(torch.zeros(1, 3, 2, 2))


def test_activation_planes_are_the_golden_quantiser_on_every_fm_code():
    codes = np.arange(-400, 400)                        # FM codes around -1..1 and beyond
    x = torch.tensor(codes / (1 << FM_FRAC), dtype=torch.float32).reshape(1, -1, 1, 1)
    planes = activation_planes(x).numpy()
    msb, lsb = bit_planes(quantize(codes.reshape(1, -1, 1, 1)))
    assert np.array_equal(planes[:1], 2.0 * msb - 1)
    assert np.array_equal(planes[1:], 2.0 * lsb - 1)


def test_activation_planes_pass_the_clipped_identity_gradient():
    x = torch.tensor([-1.5, -1.0, -0.3, 0.0, 0.4, 1.0, 1.2]).reshape(1, -1, 1, 1)
    x.requires_grad_(True)
    planes = activation_planes(x)
    # Weights 2/3 (MSB) and 1/3 (LSB): the gradient of (2q - 3) / 3 ~ x, masked to |x| <= 1.
    (planes[:1] * 2 / 3 + planes[1:] / 3).sum().backward()
    assert torch.allclose(x.grad.flatten(), torch.tensor([0, 1, 1, 1, 1, 1, 0.0]))


def test_binarize_forward_and_straight_through_gradient():
    w = torch.tensor([-2.0, -1.0, -0.25, 0.0, 0.5, 1.0, 3.0], requires_grad=True)
    out = binarize(w)
    assert out.tolist() == [-1, -1, -1, 1, 1, 1, 1]       # 0 counts as +1 (bit 1)
    (out * torch.arange(1.0, 8.0)).sum().backward()
    assert w.grad.tolist() == [0, 2, 3, 4, 5, 6, 0]          # passes only where |w| <= 1


def test_wt_rounding_is_the_golden_models():
    rng = np.random.default_rng(1)
    # Exact binary fractions with more fraction bits than WT, including ties and saturation.
    codes = np.concatenate([rng.integers(-(1 << 13), 1 << 13, 2000), [-2, -1, 1, 2, 3]])
    values = torch.tensor(codes / 2 ** 10, dtype=torch.float32)
    expected = saturate(round_shift(codes, 2), 12)        # 10 -> 8 fraction bits, 12-bit code
    assert np.array_equal(wt_codes(values).numpy(), expected)
    # The linear layer's weights go on to 7 fraction bits, as the golden model re-rounds them.
    assert np.array_equal((fake_linear_wt(values) * 128).detach().numpy(),
                          round_shift(expected, 1))
    v = torch.tensor([0.1, 9.0, -9.0], requires_grad=True)
    fake_wt(v).sum().backward()
    assert v.grad.tolist() == [1, 0, 0]                    # straight through inside the range


def test_threshold_codes_make_the_gate_exact():
    rng = np.random.default_rng(2)
    tau = torch.tensor(rng.uniform(-8, 8, 500), dtype=torch.float32)
    codes = threshold_codes(tau).numpy().astype(np.int64)
    assert codes.min() >= WT_MIN and codes.max() <= WT_MAX
    msb = np.arange(-60, 61)
    for t, code in zip(tau.tolist(), codes):
        torch_gate = MSB_SCALE * msb > t
        assert np.array_equal(torch_gate, precision_gate(msb, [code]).ravel())


def test_the_gate_threshold_learns_only_in_the_gate_stage():
    torch.manual_seed(0)
    net = FracBNNNet()
    pixels = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    for stage, learns in (("binary", False), ("gate", True)):
        net.set_stage(stage)
        net.train()
        net.zero_grad()
        net(pixels).sum().backward()
        rate, soft, total = net.gate_stats()
        grads = [conv.threshold.grad for conv in net.pg_convs().values()]
        if learns:
            assert soft is not None and 0 < float(soft.detach()) < total
            assert any(g is not None and g.abs().sum() > 0 for g in grads)
        else:
            assert soft is None
            assert all(g is None or not g.any() for g in grads)
        assert 0 <= rate <= 1


def _random_net(seed, pixels):
    """A network with random parameters, its batch-norm statistics measured on ``pixels``
    (as training does before it freezes them) and a random linear layer on the features'
    deviations from their mean (a random network's features vary little from image to image,
    so an uncentred head would give every image the same class)."""
    torch.manual_seed(seed)
    net = FracBNNNet()
    net.set_stage("binary")
    batch = torch.from_numpy(pixels)
    with torch.no_grad():
        for name, bn in net.named_modules():
            if isinstance(bn, FoldedBatchNorm):
                # Small residual branches (bn1, bn2 of a block), as in a trained ResNet: a
                # random deep network amplifies rounding differences less then.
                branch = name.startswith("layer") and name[-1] in "12"
                bn.weight.uniform_(0.1, 0.3) if branch else bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.2, 0.2)
                bn.momentum = None                # a cumulative average: the whole batch
        for conv in net.pg_convs().values():
            conv.threshold.uniform_(-6, 6)
        for block in net.block_names:
            for k in (1, 2):
                rprelu = getattr(getattr(net, block), f"rprelu{k}")
                for p in (rprelu.shift_x_bias, rprelu.shift_y_bias):
                    p.uniform_(-0.3, 0.3)
                rprelu.prelu_weight.uniform_(0, 0.5)
        net.train()
        net(batch)
        net.set_stage("gate")
        net.eval()
        features = net.features(batch)
        spread = features.std(0).clamp(min=1 / 16)
        net.linear.weight.copy_(torch.randn(net.linear.weight.shape) / spread / 8)
        net.linear.bias.copy_(-net.linear.weight @ features.mean(0))
    return net


def _images(seed):
    """Blocky images (random 4x4 colours, scaled up) and random noise."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (32, 3, 4, 4), dtype=np.uint8).repeat(8, 2).repeat(8, 3)
    return np.concatenate([blocks, rng.integers(0, 256, (16, 3, 32, 32), dtype=np.uint8)])


@pytest.mark.parametrize("seed", [0, 1])
def test_export_round_trip_layer_by_layer(tmp_path, seed):
    """Every layer of the exported model, fed the golden model's own input, computes what
    the PyTorch layer computes up to the rounding of intermediate values: a few FM steps
    (docs/training.md §3). A parameter exported to the wrong key or converted wrongly would
    be off by far more."""
    pixels = _images(seed)
    net = _random_net(seed, pixels)
    names = [f"class {k}" for k in range(10)]
    golden = write_model(net, tmp_path / "model.npz", names)
    assert FracBNN.from_npz(tmp_path / "model.npz").class_names == tuple(names)
    assert set(golden.params) == set(EXPECTED_ARRAYS) | {CLASS_NAMES_KEY}
    logits, trace = golden.logits(pixels[:16], trace=True)
    step = 1 / (1 << FM_FRAC)
    with torch.no_grad():
        stem = net.bn1(net.conv1(thermometer(torch.from_numpy(pixels[:16])))).numpy()
        # conv1's sums are exact: one rounding to FM apart.
        assert np.abs(stem - trace["bn1"] * step).max() <= step / 2 + 1e-6
        x = trace["bn1"]
        for spec in PG_CONVS:
            out = getattr(net, spec.block).half(spec, torch.from_numpy(x * step).float())
            x = trace[f"{spec.block}.out{spec.index}"]
            error = np.abs(out.numpy() - x * step)
            assert error.max() <= 8 * step, spec.name
            assert np.mean(error > 1.5 * step) < 0.25, spec.name
        pooled = net.features(torch.from_numpy(pixels[:16]))
        head = torch.from_numpy(trace["pool_fm"] * step).float()
        torch_logits = net.head(head)
    # The same pooled features: at most the linear layer's 65 roundings (bias, 64 products)
    # apart.
    assert np.abs(torch_logits.numpy() - logits * step).max() <= 65 * step / 2
    # The features do vary from image to image (else the check would prove little).
    assert pooled.std(0).mean() > 0.1


def test_export_codes_are_what_the_modules_compute_with():
    net = _random_net(3, _images(3))
    params = model_params(net)
    scale, bias = net.layer2_0.bn3.folded()
    expected = np.floor(scale.detach().numpy().astype(np.float64) * 256 + 0.5)
    assert np.array_equal(params["layer2_0.bn3.weight"], np.clip(expected, WT_MIN, WT_MAX))
    assert np.array_equal(params["layer1_0.conv1.weight"],
                          (net.layer1_0.conv1.weight >= 0).numpy().astype(np.uint8))
    assert np.array_equal(params["layer3_2.conv2.threshold"],
                          np.floor(net.layer3_2.conv2.threshold.detach().numpy() * 256))


def test_write_model_refuses_bad_paths_and_names_and_writes_nothing(tmp_path):
    net = _random_net(4, _images(4)[:8])
    with pytest.raises(ValueError, match="must end in .npz"):
        write_model(net, tmp_path / "model.bin")
    with pytest.raises(ModelFormatError, match="names a class twice"):
        write_model(net, tmp_path / "model.npz", ["a", "a"])
    with pytest.raises(TypeError, match="FracBNNNet"):
        golden_model(torch.nn.Linear(2, 2))
    assert list(tmp_path.iterdir()) == []
