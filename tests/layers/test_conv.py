import itertools

import keras
import numpy as np
import pytest

from dlkit.layers.conv import (
    DilatedConv2D,
    TransposedConv2D,
    conv_as_matrix,
    conv_output_size,
    receptive_field,
)
from dlkit.testing import run_layer_test
from dlkit.training import value_and_grad

RNG = np.random.default_rng(0)
IMAGES = RNG.normal(size=(2, 11, 10, 2)).astype("float32")  # (B, H, W, C)


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def correlate(x, kernel):
    """Plain "valid" stride-1 correlation: x (B, H, W, C), kernel (kh, kw, C, F)."""
    kernel_height, kernel_width = kernel.shape[:2]
    out_height, out_width = x.shape[1] - kernel_height + 1, x.shape[2] - kernel_width + 1
    outputs = np.zeros((x.shape[0], out_height, out_width, kernel.shape[3]))
    for u, v in np.ndindex(kernel_height, kernel_width):
        window = x[:, u : u + out_height, v : v + out_width, :]
        outputs += np.einsum("bhwc,cf->bhwf", window, kernel[u, v])
    return outputs


def same_padding(size, kernel_size, stride):
    """TensorFlow's "same" rule: total padding to reach ⌈size/stride⌉ outputs, extra zero last."""
    total = max((-(-size // stride) - 1) * stride + kernel_size - size, 0)
    return total // 2, total - total // 2


def numpy_dilated_conv(x, kernel, strides, padding, dilation_rate):
    """Notes §4.6 literally: insert d - 1 zeros between taps, then an ordinary convolution."""
    (kernel_height, kernel_width), (dilation_height, dilation_width) = (
        kernel.shape[:2],
        dilation_rate,
    )
    expanded = np.zeros(
        (
            (kernel_height - 1) * dilation_height + 1,
            (kernel_width - 1) * dilation_width + 1,
            *kernel.shape[2:],
        )
    )
    expanded[::dilation_height, ::dilation_width] = kernel
    if padding == "same":
        pads = [same_padding(n, k, s) for n, k, s in zip(x.shape[1:3], expanded.shape, strides)]
        x = np.pad(x, [(0, 0), *pads, (0, 0)])
    return correlate(x, expanded)[:, :: strides[0], :: strides[1], :]


def numpy_transposed_conv(x, kernel, strides, padding):
    """Notes §4.5 literally: zero insertion, border padding, convolution with the flipped kernel."""
    batch, height, width, channels = x.shape
    upsampled = np.zeros(
        (batch, (height - 1) * strides[0] + 1, (width - 1) * strides[1] + 1, channels)
    )
    upsampled[:, :: strides[0], :: strides[1], :] = x
    pads = []
    for n, k, s in zip((height, width), kernel.shape[:2], strides):
        out_size = n * s + (max(k - s, 0) if padding == "valid" else 0)
        crop = max(k - s, 0) // 2 if padding == "same" else 0
        pads.append((k - 1 - crop, out_size - (n - 1) * s - 1 + crop))
    upsampled = np.pad(upsampled, [(0, 0), *pads, (0, 0)])
    flipped = kernel[::-1, ::-1].transpose(0, 1, 3, 2)  # (kh, kw, in, filters)
    return correlate(upsampled, flipped)


def numpy_normal(shape, dtype=None):
    """Initializer drawing in NumPy: JAX would compile a random generator for every new shape."""
    return np.random.default_rng(sum(shape)).normal(size=shape).astype("float32")


def numpy_ones(shape, dtype=None):
    return np.ones(shape, "float32")


NUMPY_INIT = {"kernel_initializer": numpy_normal, "bias_initializer": numpy_normal}
ONES_INIT = {"kernel_initializer": numpy_ones, "bias_initializer": numpy_ones}


# ----------------------------------------------------------------------------- DilatedConv2D


@pytest.mark.parametrize(
    "kwargs, expected_shape",
    [
        ({"kernel_size": 3, "dilation_rate": 2}, (2, 7, 6, 4)),
        (
            {"kernel_size": (3, 2), "strides": 2, "dilation_rate": (2, 3), "padding": "same"},
            (2, 6, 5, 4),
        ),
    ],
)
def test_dilated_conv_passes_the_layer_checks(kwargs, expected_shape):
    layer = run_layer_test(
        DilatedConv2D,
        {"filters": 4, "activation": "tanh", **kwargs},
        input_data=IMAGES,
        expected_output_shape=expected_shape,
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=0,
    )
    assert layer.compute_output_shape((None, 11, 10, 2)) == (None, *expected_shape[1:])


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("kernel_size", [3, (2, 3)])
def test_dilated_conv_equals_expanded_kernel_and_keras_conv2d(kernel_size, padding):
    for strides, dilation_rate in [(1, 2), (3, 1), (2, 2), (3, (3, 2)), ((2, 1), 3)]:
        layer = DilatedConv2D(3, kernel_size, strides, padding, dilation_rate, **NUMPY_INIT)
        layer.build(IMAGES.shape)
        kernel, bias = layer.get_weights()
        received = to_numpy(layer(IMAGES))
        expected = (
            numpy_dilated_conv(IMAGES, kernel, layer.strides, padding, layer.dilation_rate) + bias
        )
        case = f"strides={strides}, dilation_rate={dilation_rate}"
        assert received.shape == expected.shape, case
        assert received.shape[1:3] == tuple(
            conv_output_size(n, k, padding, s, d)
            for n, k, s, d in zip(
                IMAGES.shape[1:3], layer.kernel_size, layer.strides, layer.dilation_rate
            )
        ), case
        np.testing.assert_allclose(received, expected, atol=1e-4, err_msg=case)
        if max(layer.strides) == 1 or max(layer.dilation_rate) == 1:  # what Conv2D accepts
            keras_layer = keras.layers.Conv2D(
                3, kernel_size, strides, padding, dilation_rate=dilation_rate, **NUMPY_INIT
            )
            keras_layer.build(IMAGES.shape)
            keras_layer.set_weights([kernel, bias])
            np.testing.assert_allclose(
                received, to_numpy(keras_layer(IMAGES)), atol=1e-5, err_msg=case
            )


# -------------------------------------------------------------------------- TransposedConv2D


@pytest.mark.parametrize(
    "kwargs, expected_shape",
    [
        ({"kernel_size": 3, "strides": 2}, (2, 23, 21, 4)),
        ({"kernel_size": (4, 2), "strides": (3, 2), "padding": "same"}, (2, 33, 20, 4)),
    ],
)
def test_transposed_conv_passes_the_layer_checks(kwargs, expected_shape):
    layer = run_layer_test(
        TransposedConv2D,
        {"filters": 4, "activation": "tanh", **kwargs},
        input_data=IMAGES,
        expected_output_shape=expected_shape,
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=0,
    )
    assert layer.kernel.shape == (*layer.kernel_size, 4, 2)  # (kh, kw, filters, in): Keras'
    assert layer.compute_output_shape((None, 11, 10, 2)) == (None, *expected_shape[1:])


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize(
    "kernel_size, all_strides", [(2, [1, 2, 3]), (3, [1, 2, 3]), (4, [1, 2, 3]), ((4, 1), [(3, 2)])]
)
def test_transposed_conv_equals_zero_insertion_and_keras_conv2d_transpose(
    kernel_size, all_strides, padding
):
    x = IMAGES[:, :4, :5]
    for strides in all_strides:
        layer = TransposedConv2D(3, kernel_size, strides, padding, **NUMPY_INIT)
        layer.build(x.shape)
        kernel, bias = layer.get_weights()
        keras_layer = keras.layers.Conv2DTranspose(3, kernel_size, strides, padding, **NUMPY_INIT)
        keras_layer.build(x.shape)
        keras_layer.set_weights([kernel, bias])
        received = to_numpy(layer(x))
        expected = numpy_transposed_conv(x, kernel, layer.strides, padding) + bias
        case = f"strides={strides}"
        assert received.shape == expected.shape == layer.compute_output_shape(x.shape), case
        np.testing.assert_allclose(received, expected, atol=1e-4, err_msg=case)
        np.testing.assert_allclose(received, to_numpy(keras_layer(x)), atol=1e-5, err_msg=case)


def test_layers_accept_unknown_spatial_sizes_in_a_functional_model():
    inputs = keras.Input((None, None, 2))
    hidden = DilatedConv2D(3, 3, 2, "same", 2, **NUMPY_INIT)(inputs)
    outputs = TransposedConv2D(2, 4, 2, "same", **NUMPY_INIT)(hidden)
    assert tuple(hidden.shape) == (None, None, None, 3)
    assert tuple(outputs.shape) == (None, None, None, 2)
    model = keras.Model(inputs, outputs)
    assert tuple(keras.ops.shape(model(IMAGES))) == (2, 12, 10, 2)  # 11 → 6 → 12, 10 → 5 → 10


# ----------------------------------------------------------------------- conv_output_size


def test_conv_output_size_reproduces_the_notes_examples():
    assert conv_output_size(7, 3) == 5  # notes §4.2: W=7, K=3, P=0, S=1
    assert conv_output_size(32, 6, strides=2) == 14  # 32×32×3 image, 6×6 kernels, S=2
    assert conv_output_size(7, 3, padding=2) == 7  # eq. 4.2 with an explicit total padding P
    assert conv_output_size(9, 3, dilation_rate=3) == 3  # effective kernel 7
    assert conv_output_size(10, 4, "same", 3, 2) == 4


def test_conv_output_size_matches_keras_output_shapes():
    grid = itertools.product(range(4, 10), [1, 2, 3, 4], [1, 2, 3], [1, 2, 3], ["valid", "same"])
    checked = 0
    for index, (size, kernel_size, strides, dilation_rate, padding) in enumerate(grid):
        case = (size, kernel_size, strides, dilation_rate, padding)
        if padding == "valid" and size < kernel_size + (kernel_size - 1) * (dilation_rate - 1):
            with pytest.raises(ValueError, match="size"):
                conv_output_size(size, kernel_size, padding, strides, dilation_rate)
            continue
        expected = tuple(
            conv_output_size(n, kernel_size, padding, strides, dilation_rate)
            for n in (size, size + 3)
        )
        # Keras' shape inference for every case, and a real convolution for one case in twenty
        # (DilatedConv2D's real shapes for strides and dilation > 1 are checked above).
        kernel = np.ones((kernel_size, kernel_size, 1, 1), "float32")
        symbolic = keras.KerasTensor((1, size, size + 3, 1))
        outputs = keras.ops.conv(symbolic, kernel, strides, padding, dilation_rate=dilation_rate)
        assert tuple(outputs.shape[1:3]) == expected, case
        if index % 20 == 0 and (strides == 1 or dilation_rate == 1):
            images = np.zeros((1, size, size + 3, 1), "float32")
            outputs = keras.ops.conv(images, kernel, strides, padding, dilation_rate=dilation_rate)
            assert tuple(keras.ops.shape(outputs))[1:3] == expected, case
        checked += 1
    assert checked > 300


# ------------------------------------------------------------------------ receptive_field


def brute_force_receptive_field(layers, size=48):
    """Extent of the input pixels whose gradient on one central output unit is non-zero.

    All-ones kernels and average pooling leave no room for cancellation, so a pixel has a
    non-zero gradient exactly when it influences the unit; holes of dilated kernels fall inside
    the field's bounding box, which is what the receptive field measures.
    """
    model = keras.Sequential([keras.Input((size, size, 1)), *layers])  # kernels of ones
    out_height, out_width = model.output_shape[1:3]

    def central_unit(x):
        return model(x)[0, out_height // 2, out_width // 2, 0]

    _, _, (gradient,) = value_and_grad(central_unit, inputs=[np.ones((1, size, size, 1))])
    rows, columns = np.nonzero(to_numpy(gradient)[0, :, :, 0])
    assert rows.min() > 0 and columns.min() > 0, "the field touches the border: enlarge `size`"
    height, width = int(rows.max() - rows.min() + 1), int(columns.max() - columns.min() + 1)
    return height if height == width else (height, width)


@pytest.mark.parametrize(
    "make_layers, as_tuples, expected",
    [
        (
            lambda: [
                keras.layers.Conv2D(1, 3, use_bias=False, **ONES_INIT),
                keras.layers.Conv2D(1, 3, **ONES_INIT),
            ],
            [(3, 1), (3, 1)],
            5,
        ),
        (
            lambda: [
                keras.layers.Conv2D(1, 3, strides=2, **ONES_INIT),
                keras.layers.AveragePooling2D(2),
                DilatedConv2D(1, 3, dilation_rate=2, **ONES_INIT),
            ],
            [(3, 2), (2, 2), (3, 1, 2)],
            21,
        ),
        (
            lambda: [
                DilatedConv2D(1, 3, dilation_rate=2, **ONES_INIT),
                DilatedConv2D(1, 3, dilation_rate=4, **ONES_INIT),
            ],
            [(3, 1, 2), (3, 1, 4)],
            13,
        ),
        (
            lambda: [
                keras.layers.Conv2D(1, (3, 1), strides=(1, 2), **ONES_INIT),
                DilatedConv2D(1, (2, 3), dilation_rate=(3, 1), **ONES_INIT),
            ],
            [((3, 1), (1, 2)), ((2, 3), 1, (3, 1))],
            (6, 5),
        ),
    ],
)
def test_receptive_field_matches_the_gradient_of_one_output_unit(make_layers, as_tuples, expected):
    layers = make_layers()
    assert receptive_field(as_tuples) == expected
    assert brute_force_receptive_field(layers) == expected
    assert receptive_field(layers) == expected


def test_receptive_field_reads_pooling_and_rejects_other_layers():
    assert (
        receptive_field([keras.layers.MaxPooling2D(2), (3, 1)])
        == receptive_field([(2, 2), (3, 1)])
        == 6
    )
    assert receptive_field([keras.layers.MaxPooling2D(3, strides=1)]) == 3
    assert receptive_field([]) == 1
    with pytest.raises(TypeError, match=r"layers\[1\]"):
        receptive_field([(3, 1), keras.layers.Conv2DTranspose(1, 3)])
    with pytest.raises(TypeError, match=r"layers\[0\]"):
        receptive_field([keras.layers.Dense(3)])
    with pytest.raises(ValueError, match=r"layers\[0\] strides"):
        receptive_field([(3, 0)])
    with pytest.raises(ValueError, match=r"layers\[1\]"):
        receptive_field([(3, 1), (3,)])


# ------------------------------------------------------------------------- conv_as_matrix


def test_conv_as_matrix_is_the_notes_unrolled_weight_matrix():
    kernel = np.arange(9.0).reshape(3, 3)  # w[i, j] = 3 i + j
    notes_matrix = conv_as_matrix(kernel, (4, 4)).T  # the notes' W is |input| × |output|
    assert notes_matrix.shape == (16, 4)
    # First column of the notes' table: w00 w01 w02 0 w10 w11 w12 0 w20 w21 w22 0 0 0 0 0.
    np.testing.assert_array_equal(
        notes_matrix[:, 0], [0, 1, 2, 0, 3, 4, 5, 0, 6, 7, 8, 0, 0, 0, 0, 0]
    )
    # Last column: the same weights shifted one row and one column down the image.
    np.testing.assert_array_equal(
        notes_matrix[:, 3], [0, 0, 0, 0, 0, 0, 1, 2, 0, 3, 4, 5, 0, 6, 7, 8]
    )


@pytest.mark.parametrize(
    "kernel_size, input_size, strides, padding, dilation_rate",
    [
        (3, 7, 2, "valid", 1),
        (4, 8, 2, "same", 1),
        (3, 5, 1, "same", 1),
        (4, 6, 1, "same", 1),  # odd padding total: the extra zero goes last
        (2, 9, 3, "valid", 1),
        (3, 9, 1, "same", 2),
    ],
)
def test_conv_as_matrix_computes_the_convolution_and_its_transpose(
    kernel_size, input_size, strides, padding, dilation_rate
):
    kernel = RNG.normal(size=(kernel_size, kernel_size, 2, 3)).astype(
        "float32"
    )  # (kh, kw, in, out)
    x = RNG.normal(size=(input_size, input_size, 2)).astype("float32")
    matrix = conv_as_matrix(kernel, x.shape, strides, padding, dilation_rate)
    outputs = to_numpy(
        keras.ops.conv(x[None], kernel, strides, padding, dilation_rate=dilation_rate)
    )[0]
    assert matrix.shape == (outputs.size, x.size)
    np.testing.assert_allclose(matrix @ x.reshape(-1), outputs.reshape(-1), atol=1e-4)
    if dilation_rate == 1:  # notes §4.5: the transposed convolution multiplies by Mᵀ
        y = RNG.normal(size=outputs.shape).astype("float32")
        layer = TransposedConv2D(2, kernel_size, strides, padding, use_bias=False, **NUMPY_INIT)
        layer.build((1, *y.shape))
        layer.set_weights([kernel])  # same array: (kh, kw, filters=in, in_channels=out)
        transposed = to_numpy(layer(y[None]))[0]
        assert transposed.shape == x.shape
        np.testing.assert_allclose(matrix.T @ y.reshape(-1), transposed.reshape(-1), atol=1e-4)


def test_conv_as_matrix_takes_a_single_channel_kernel_and_checks_channels():
    kernel = RNG.normal(size=(2, 3))
    matrix = conv_as_matrix(kernel, (5, 6), strides=(1, 2))
    assert matrix.shape == (4 * 2, 30)
    with pytest.raises(ValueError, match="input_shape"):
        conv_as_matrix(kernel, (5, 6, 2))
    with pytest.raises(ValueError, match="padding"):
        conv_as_matrix(kernel, (5, 6), padding="full")


# ------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize("layer_cls", [DilatedConv2D, TransposedConv2D])
@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"filters": 0}, "filters"),
        ({"filters": -2}, "filters"),
        ({"kernel_size": 0}, "kernel_size"),
        ({"kernel_size": (3, 0)}, "kernel_size"),
        ({"kernel_size": (3, 3, 3)}, "kernel_size"),
        ({"strides": 0}, "strides"),
        ({"padding": "causal"}, "padding"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(layer_cls, kwargs, name):
    with pytest.raises(ValueError, match=name):
        layer_cls(**{"filters": 2, "kernel_size": 3, **kwargs})


def test_bad_dilation_and_bad_sizes_raise_value_errors_naming_them():
    for dilation_rate in [0, (1, 0), 1.5]:
        with pytest.raises(ValueError, match="dilation_rate"):
            DilatedConv2D(2, 3, dilation_rate=dilation_rate)
    with pytest.raises(ValueError, match="size"):
        conv_output_size(0, 3)
    with pytest.raises(ValueError, match="padding"):
        conv_output_size(5, 3, padding=-1)
    with pytest.raises(ValueError, match="strides"):
        conv_output_size(5, 3, strides=0)
    with pytest.raises(ValueError, match="input_shape"):
        DilatedConv2D(2, 3).build((None, 8, 8, None))
