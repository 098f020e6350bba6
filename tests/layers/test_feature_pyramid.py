import keras
import numpy as np
import pytest

from dlkit.layers import FeaturePyramid
from dlkit.testing import run_layer_test


def numpy_conv_same(x, kernel, bias):
    """Cross-correlation with "same" padding (odd kernels), (B, H, W, C) → (B, H, W, F)."""
    size = kernel.shape[0]
    pad = size // 2
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    height, width = x.shape[1:3]
    out = np.zeros((*x.shape[:3], kernel.shape[-1]))
    for u in range(size):
        for v in range(size):
            out += padded[:, u : u + height, v : v + width, :] @ kernel[u, v]
    return out + bias


def numpy_pyramid(levels, weights):
    """The layer's equations, transcribed: lateral 1×1, top-down ×2 nearest and add, 3×3."""
    num_levels = len(levels)
    lateral_kernels, lateral_biases = weights[0::4], weights[1::4]
    smoothing_kernels, smoothing_biases = weights[2::4], weights[3::4]
    lateral = [
        numpy_conv_same(c, k, b)
        for c, k, b in zip(levels, lateral_kernels, lateral_biases, strict=True)
    ]
    merged = [None] * num_levels
    merged[-1] = lateral[-1]
    for level in range(num_levels - 2, -1, -1):
        merged[level] = lateral[level] + merged[level + 1].repeat(2, axis=1).repeat(2, axis=2)
    return [
        numpy_conv_same(m, k, b)
        for m, k, b in zip(merged, smoothing_kernels, smoothing_biases, strict=True)
    ]


def test_feature_pyramid_passes_the_layer_checks_and_matches_numpy():
    rng = np.random.default_rng(0)
    levels = (
        rng.normal(size=(2, 8, 8, 3)).astype("float32"),
        rng.normal(size=(2, 4, 4, 5)).astype("float32"),
        rng.normal(size=(2, 2, 2, 6)).astype("float32"),
    )
    layer = run_layer_test(
        FeaturePyramid,
        {"filters": 4},
        input_data=[levels],
        expected_output_shape=[(2, 8, 8, 4), (2, 4, 4, 4), (2, 2, 2, 4)],
        expected_num_trainable_weights=12,
        expected_num_non_trainable_weights=0,
        atol=1e-5,
    )
    # Random (non-zero) biases so that every term of the equations shows in the outputs.
    weights = [rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()]
    layer.set_weights(weights)
    received = [keras.ops.convert_to_numpy(p) for p in layer(list(levels))]
    expected = numpy_pyramid(levels, weights)
    for level, (got, want) in enumerate(zip(received, expected, strict=True)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=f"level {level}")


def test_num_outputs_keeps_the_finest_levels_only():
    rng = np.random.default_rng(1)
    levels = (rng.normal(size=(2, 4, 4, 3)), rng.normal(size=(2, 2, 2, 5)))
    levels = tuple(level.astype("float32") for level in levels)
    layer = FeaturePyramid(filters=2, num_outputs=1)
    (output,) = layer(list(levels))
    assert tuple(output.shape) == (2, 4, 4, 2) and layer.get_config()["num_outputs"] == 1
    # Two lateral convolutions, one smoothing convolution: no weight without a gradient.
    assert len(layer.trainable_weights) == 6
    weights = layer.get_weights()
    full = FeaturePyramid(filters=2)
    full(list(levels))
    full.set_weights(weights + [w for w in full.get_weights()[6:]])
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(list(levels))[0]),
        keras.ops.convert_to_numpy(full(list(levels))[0]),
        atol=1e-5,
    )
    with pytest.raises(ValueError, match=r"num_outputs=3"):
        FeaturePyramid(filters=2, num_outputs=3)(list(levels))


def test_the_coarse_level_reaches_every_finer_output():
    # Changing only the coarsest map changes every output: the top-down pathway carries it.
    layer = FeaturePyramid(filters=2)
    fine, coarse = np.zeros((1, 4, 4, 1), "float32"), np.zeros((1, 2, 2, 1), "float32")
    base = [keras.ops.convert_to_numpy(p) for p in layer([fine, coarse])]
    changed = [keras.ops.convert_to_numpy(p) for p in layer([fine, coarse + 1.0])]
    for before, after in zip(base, changed, strict=True):
        assert np.all(np.abs(after - before).sum(-1) > 0)


@pytest.mark.parametrize(
    "inputs, match",
    [
        ([np.zeros((1, 4, 4, 2))], r"at least two feature maps"),
        ([np.zeros((1, 4, 4, 2)), np.zeros((1, 3, 3, 2))], r"halve.*level 0 with shape"),
        ([np.zeros((1, 4, 4)), np.zeros((1, 2, 2))], r"rank 4.*level 0 with shape \(1, 4, 4\)"),
    ],
)
def test_bad_inputs_are_rejected(inputs, match):
    with pytest.raises(ValueError, match=match):
        FeaturePyramid(filters=2)([np.asarray(x, "float32") for x in inputs])


def test_bad_filters_are_rejected():
    with pytest.raises(ValueError, match="filters"):
        FeaturePyramid(filters=0)
