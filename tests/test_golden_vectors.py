"""The golden model against the official accelerator's public vectors, bit for bit."""

import numpy as np
import pytest

from fracbnn_golden import fixedpoint


@pytest.fixture(scope="module")
def golden_run(net, public_vectors):
    return net.logits(public_vectors["pixels"], trace=True)


def test_logits_bit_exact(golden_run, public_vectors):
    logits, _ = golden_run
    assert logits.dtype == np.int16 and logits.shape == (24, 10)
    np.testing.assert_array_equal(logits, public_vectors["logits"])


def test_predictions_of_real_photos(golden_run, public_vectors):
    logits, _ = golden_run
    labelled = public_vectors["labels"] >= 0
    assert labelled.sum() == 6
    np.testing.assert_array_equal(logits.argmax(1)[labelled], public_vectors["labels"][labelled])


def test_trace_has_the_public_keys(golden_run, public_vectors):
    _, trace = golden_run
    public = {key[len("trace."):] for key in public_vectors if key.startswith("trace.")}
    assert set(trace) == public


@pytest.mark.parametrize("key", [
    "conv1_acc", "bn1", "pool", "pool_fm",
    *[f"layer{s}_{b}.{what}" for s in (1, 2, 3) for b in range(3)
      for what in ("conv1.gate", "out1", "conv2.gate", "out2")],
])
def test_trace_bit_exact(golden_run, public_vectors, key):
    _, trace = golden_run
    expected = public_vectors[f"trace.{key}"]
    assert trace[key].dtype == expected.dtype
    assert trace[key].shape == expected.shape
    mismatches = np.count_nonzero(trace[key] != expected)
    assert mismatches == 0, f"{key}: {mismatches} of {expected.size} elements differ"


def test_thermometer_counts_match_vectors(public_vectors):
    from fracbnn_golden.conv import thermometer_counts

    np.testing.assert_array_equal(thermometer_counts(public_vectors["pixels"]),
                                  public_vectors["counts"])


def test_a_rounding_mutation_is_caught(net, public_vectors, monkeypatch):
    """The vectors are sensitive: round-half-even instead of half-up breaks the logits."""
    def round_half_even(code, shift):
        code = np.asarray(code)
        if shift <= 0:
            return code << -shift
        return np.round(code / (1 << shift)).astype(code.dtype)

    monkeypatch.setattr(fixedpoint, "round_shift", round_half_even)
    logits = net.logits(public_vectors["pixels"][:6])
    assert (logits != public_vectors["logits"][:6]).any(axis=1).all()
