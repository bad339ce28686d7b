"""fracbnn_train's PyTorch modules against the golden model: the quantisers, the
straight-through estimators' gradients, and the export round trip (PyTorch -> .npz -> golden
model). Skipped without PyTorch (the ``train`` extra; ``nox -s train_tests``)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fracbnn_golden import FracBNN, ModelFormatError  # noqa: E402
from fracbnn_golden.conv import thermometer_bits  # noqa: E402
from fracbnn_golden.fixedpoint import (  # noqa: E402
    FM_FRAC,
    FM_MAX,
    FM_MIN,
    WT_MAX,
    WT_MIN,
    round_shift,
    saturate,
    to_fm,
)
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
    fm_round,
    global_pool,
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


def _random_net(seed, pixels, gain=1.0):
    """A network with random parameters, its batch-norm statistics measured on ``pixels``
    (as training does before it freezes them) and a random linear layer on the features'
    deviations from their mean (a random network's features vary little from image to image,
    so an uncentred head would give every image the same class). ``gain`` multiplies the
    gamma of ``bn1`` and of every block's output batch norms after the statistics are
    measured, so that the feature maps grow from block to block: large gains saturate."""
    torch.manual_seed(seed)
    net = FracBNNNet()
    net.set_stage("binary")
    batch = torch.from_numpy(pixels)
    outputs = []          # bn1 and the blocks' output batch norms (bn3, bn4)
    with torch.no_grad():
        for name, bn in net.named_modules():
            if isinstance(bn, FoldedBatchNorm):
                # Small residual branches (bn1, bn2 of a block), as in a trained ResNet.
                branch = name.startswith("layer") and name[-1] in "12"
                bn.weight.uniform_(0.1, 0.3) if branch else bn.weight.uniform_(0.5, 1.5)
                if not branch:
                    outputs.append(bn)
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
        for bn in outputs:
            bn.weight.mul_(gain)
        net.set_stage("gate")
        net.eval()
        features = net.features(batch).float()
        spread = features.std(0).clamp(min=1 / 16)
        net.linear.weight.copy_(torch.randn(net.linear.weight.shape) / spread / 8)
        net.linear.bias.copy_(-net.linear.weight @ features.mean(0))
    return net


def _images(seed):
    """Blocky images (random 4x4 colours, scaled up) and random noise."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (32, 3, 4, 4), dtype=np.uint8).repeat(8, 2).repeat(8, 3)
    return np.concatenate([blocks, rng.integers(0, 256, (16, 3, 32, 32), dtype=np.uint8)])


def _codes(values):
    """FM values (a tensor) -> FM codes (int64 numpy), checking that they are on the grid."""
    codes = values.numpy() * (1 << FM_FRAC)
    assert np.array_equal(codes, np.round(codes)), "not on the FM grid"
    return codes.astype(np.int64)


@pytest.mark.parametrize("seed, gain", [(0, 1.0), (1, 1.0), (2, 4.0)])
def test_evaluation_mode_is_the_golden_model_layer_by_layer(tmp_path, seed, gain):
    """In evaluation mode the PyTorch network computes the golden model's fixed-point
    arithmetic (docs/training.md §4): run on its own, every layer's output equals the golden
    model's trace of the exported file code for code, and so do the gates, the pooled
    features and the logits. Any rounding done differently (half up at every assignment, the
    truncating pools) shows as codes one apart; ``gain`` 4 makes the feature maps and the
    global pool saturate, which the test checks happens."""
    pixels = _images(seed)
    net = _random_net(seed, pixels, gain)
    names = [f"class {k}" for k in range(10)]
    golden = write_model(net, tmp_path / "model.npz", names)
    assert FracBNN.from_npz(tmp_path / "model.npz").class_names == tuple(names)
    assert set(golden.params) == set(EXPECTED_ARRAYS) | {CLASS_NAMES_KEY}
    logits, trace = golden.logits(pixels, trace=True)
    batch = torch.from_numpy(pixels)
    assert not net.training
    with torch.no_grad():
        x = net.bn1(net.conv1(thermometer(batch)))
        assert np.array_equal(_codes(x), trace["bn1"])
        for spec in PG_CONVS:
            x = getattr(net, spec.block).half(spec, x)
            assert np.array_equal(_codes(x), trace[f"{spec.block}.out{spec.index}"]), spec.name
            # The trace holds a stride-2 conv's gate at every input position; it keeps (2i, 2j).
            gate = trace[f"{spec.name}.gate"][:, :, ::spec.stride, ::spec.stride]
            assert int(net.pg_convs()[spec.name].gate_count) == gate.sum(), spec.name
        pooled = global_pool(x, fixed_point=True)
        assert np.array_equal(_codes(pooled), trace["pool_fm"])
        assert np.array_equal(_codes(net.head(pooled)), logits)
        assert np.array_equal(_codes(net(batch)), logits)
    if gain > 1:
        saturated = [key for key, value in trace.items()
                     if key.endswith(("out1", "out2")) and np.isin(value, [FM_MIN, FM_MAX]).any()]
        # A channel's 64 positions adding up beyond the POOL range (+-512) saturated it.
        totals = trace["layer3_2.out2"].astype(np.int64).reshape(len(pixels), 64, -1).sum(-1)
        assert len(saturated) >= 10 and (np.abs(totals) > 512 << FM_FRAC).any(), saturated
    else:
        # Varied features and logits (else the check would prove little).
        assert pooled.std(0).mean() > 0.1 and len(np.unique(logits.argmax(1))) >= 3


def test_training_mode_keeps_the_float_surrogate():
    """Training mode does not round intermediate values (its gradients are the surrogate's):
    the same network gives other, off-grid values than in evaluation mode."""
    pixels = _images(5)[:8]
    net = _random_net(5, pixels)
    with torch.no_grad():
        evaluated = net(torch.from_numpy(pixels))
        net.train()
        trained = net(torch.from_numpy(pixels))
    assert evaluated.dtype == torch.float64 and trained.dtype == torch.float32
    off_grid = trained.numpy() * (1 << FM_FRAC)
    assert not np.array_equal(off_grid, np.round(off_grid))
    assert np.abs(trained.numpy() - evaluated.numpy()).max() < 1


def test_fm_round_is_the_golden_assignment_to_fm():
    """Ties round up (toward +inf, also for negative values) and the FM range saturates, as
    the golden model's ``to_fm``: the rounding whose bias (ties at every odd RPReLU shift)
    separated the float model from the golden one by about half an FM step per layer."""
    codes = np.concatenate([np.arange(-600, 600), [-(1 << 24), (1 << 24) - 1]])  # 9 fraction bits
    values = torch.tensor(codes / (1 << 9), dtype=torch.float64)
    assert np.array_equal(_codes(fm_round(values)), to_fm(codes, 9))
    assert fm_round(torch.tensor([-0.5 / 128, 0.5 / 128], dtype=torch.float64)).tolist() == \
        [0.0, 1 / 128]


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
