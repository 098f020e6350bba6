"""Dilated and transposed convolutions, and the arithmetic of convolution stacks (notes ch. 4).

Channels-last throughout. Like Keras, the layers compute a correlation (the kernel is not
flipped, notes §4.1); with learned kernels the two are interchangeable. The functions answer the
questions of §4.2, §4.4 and §4.12.1 for a given configuration: how large is the output, which
matrix does the convolution multiply by, and how much of the input does one output unit see.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from dlkit.validation import check_choice, check_int

__all__ = [
    "DilatedConv2D",
    "TransposedConv2D",
    "conv_as_matrix",
    "conv_output_size",
    "receptive_field",
]


@keras.saving.register_keras_serializable(package="dlkit")
class DilatedConv2D(keras.layers.Layer):
    """2-D convolution whose kernel taps are spread apart by holes.

    Dilation widens the window a filter sees without adding weights: a 3×3 kernel with
    `dilation_rate=2` covers 5×5 input pixels with 9 weights. Stacking dilated convolutions with
    growing rates makes the receptive field grow exponentially with depth. Drop-in for
    `keras.layers.Conv2D(dilation_rate=...)`: same kernel shape and weight order, so
    `set_weights` transfers; unlike it, strides and dilation may both exceed 1.

    Equation:
        outputs[b, i, j, f] = bias[f]
            + Σ_{u, v, c} padded[b, s·i + d·u, s·j + d·v, c] · kernel[u, v, c, f]   [notes §4.6]
        i.e. `kernel` expanded with d − 1 zeros between consecutive taps, of effective size
        k_eff = k + (k − 1)(d − 1), applied as an ordinary convolution (s = strides,
        d = dilation_rate, padded = inputs, zero-padded when padding="same").

    Args:
        filters: number of output channels (the depth of notes §4.2), at least 1.
        kernel_size: int or pair (height, width), at least 1.
        strides: int or pair, at least 1.
        padding: "valid" (no padding) or "same" (output size ⌈input / strides⌉).
        dilation_rate: int or pair, at least 1; 1 is an ordinary convolution.
        activation: activation applied to the output (name or callable), or None.
        use_bias: whether to add a learned bias per filter.
        kernel_initializer: initializer of the `(kh, kw, in_channels, filters)` kernel.
        bias_initializer: initializer of the `(filters,)` bias.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(batch, height, width, in_channels)` tensor.

    Returns:
        `(batch, out_height, out_width, filters)`, sizes given by `conv_output_size`.

    Example:
        >>> layer = DilatedConv2D(8, 3, dilation_rate=2)
        >>> tuple(layer(np.zeros((1, 9, 9, 3), "float32")).shape)
        (1, 5, 5, 8)

    Reference:
        Yu & Koltun, "Multi-Scale Context Aggregation by Dilated Convolutions", ICLR 2016.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        dilation_rate=1,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, minimum=1)
        self.kernel_size = _pair("kernel_size", kernel_size, minimum=1)
        self.strides = _pair("strides", strides, minimum=1)
        self.padding = _check_padding(padding)
        self.dilation_rate = _pair("dilation_rate", dilation_rate, minimum=1)
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        in_channels = _in_channels(input_shape)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(*self.kernel_size, in_channels, self.filters),
            initializer=self.kernel_initializer,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.filters,), initializer=self.bias_initializer
            )

    def call(self, inputs):
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            # TensorFlow refuses strides > 1 with dilation > 1 in one op, so build the expanded
            # kernel of the notes explicitly and stride it without dilation (same result, more
            # multiplications by zero).
            outputs = keras.ops.conv(
                inputs, self._expanded_kernel(), self.strides, self.padding, "channels_last"
            )
        else:
            outputs = keras.ops.conv(
                inputs, self.kernel, self.strides, self.padding, "channels_last", self.dilation_rate
            )
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs)

    def _expanded_kernel(self):
        """The kernel with d − 1 zeros between taps: `(k_eff_h, k_eff_w, in, filters)`."""
        kernel_height, kernel_width, in_channels, filters = self.kernel.shape
        dilation_height, dilation_width = self.dilation_rate
        spread = keras.ops.reshape(
            self.kernel, (kernel_height, 1, kernel_width, 1, in_channels, filters)
        )
        spread = keras.ops.pad(
            spread,
            [[0, 0], [0, dilation_height - 1], [0, 0], [0, dilation_width - 1], [0, 0], [0, 0]],
        )  # (kh, dh, kw, dw, in, filters): each tap followed by its holes
        spread = keras.ops.reshape(
            spread,
            (kernel_height * dilation_height, kernel_width * dilation_width, in_channels, filters),
        )
        # The last tap has no holes after it.
        return spread[
            : (kernel_height - 1) * dilation_height + 1, : (kernel_width - 1) * dilation_width + 1
        ]

    def compute_output_shape(self, input_shape):
        sizes = [
            None if size is None else conv_output_size(size, kernel, self.padding, stride, rate)
            for size, kernel, stride, rate in zip(
                input_shape[1:3], self.kernel_size, self.strides, self.dilation_rate
            )
        ]
        return (input_shape[0], *sizes, self.filters)

    def get_config(self):
        return {**super().get_config(), **_conv_config(self), "dilation_rate": self.dilation_rate}


@keras.saving.register_keras_serializable(package="dlkit")
class TransposedConv2D(keras.layers.Layer):
    """2-D transposed convolution: upsampling by zero insertion followed by a convolution.

    A strided convolution shrinks its input; the transposed convolution maps back to the larger
    size, like a convolution with stride 1/s. It spreads the input out with s − 1 zeros between
    pixels, pads the border, and convolves with the spatially flipped kernel. It is exactly the
    transpose (adjoint) of a strided `Conv2D`: with `M = conv_as_matrix(kernel, big_shape, s)`,
    it computes `Mᵀ · flatten(inputs)`. Drop-in for `keras.layers.Conv2DTranspose` (same kernel
    shape, output sizes and values; no `output_padding` or `dilation_rate`).

    Equation:
        upsampled[b, s·i, s·j, c] = inputs[b, i, j, c], zeros in between   [notes §4.5]
        outputs = bias + conv(pad(upsampled, k − 1 − p before, rest after), flip(kernel))
        size: n·s + max(k − s, 0) for "valid" (p = 0); n·s for "same", with
        p = ⌊max(k − s, 0) / 2⌋ (s = strides, k = kernel_size, n = input size per axis).

    Args:
        filters: number of output channels, at least 1.
        kernel_size: int or pair (height, width), at least 1.
        strides: int or pair, the upsampling factor, at least 1.
        padding: "valid" or "same", as in `keras.layers.Conv2DTranspose`.
        activation: activation applied to the output (name or callable), or None.
        use_bias: whether to add a learned bias per filter.
        kernel_initializer: initializer of the `(kh, kw, filters, in_channels)` kernel.
        bias_initializer: initializer of the `(filters,)` bias.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(batch, height, width, in_channels)` tensor.

    Returns:
        `(batch, out_height, out_width, filters)`, sizes as in the equation.

    Example:
        >>> layer = TransposedConv2D(8, 3, strides=2, padding="same")
        >>> tuple(layer(np.zeros((1, 4, 4, 3), "float32")).shape)
        (1, 8, 8, 8)

    Reference:
        Dumoulin & Visin, "A guide to convolution arithmetic for deep learning", 2016.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, minimum=1)
        self.kernel_size = _pair("kernel_size", kernel_size, minimum=1)
        self.strides = _pair("strides", strides, minimum=1)
        self.padding = _check_padding(padding)
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        in_channels = _in_channels(input_shape)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(*self.kernel_size, self.filters, in_channels),
            initializer=self.kernel_initializer,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.filters,), initializer=self.bias_initializer
            )

    def call(self, inputs):
        # "valid" keeps every position any input reaches, n·s + max(k − s, 0) of them; "same"
        # keeps n·s, cropping ⌊extra / 2⌋ first and the rest last: the adjoint of a "same"
        # strided Conv2D. When the crop is symmetric the backend's own "same" is exact on every
        # backend; an odd crop is done here, as PyTorch pads only on one side.
        extra = [max(k - s, 0) for k, s in zip(self.kernel_size, self.strides)]
        if self.padding == "valid" or all(size % 2 == 0 for size in extra):
            return self._finish(
                keras.ops.conv_transpose(
                    inputs, self.kernel, self.strides, self.padding, data_format="channels_last"
                )
            )
        outputs = keras.ops.conv_transpose(
            inputs, self.kernel, self.strides, "valid", data_format="channels_last"
        )
        top, left = extra[0] // 2, extra[1] // 2
        bottom, right = extra[0] - top, extra[1] - left
        return self._finish(outputs[:, top : -bottom or None, left : -right or None, :])

    def _finish(self, outputs):
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs)

    def compute_output_shape(self, input_shape):
        sizes = [
            None if n is None else n * s + (0 if self.padding == "same" else max(k - s, 0))
            for n, k, s in zip(input_shape[1:3], self.kernel_size, self.strides)
        ]
        return (input_shape[0], *sizes, self.filters)

    def get_config(self):
        return {**super().get_config(), **_conv_config(self)}


def conv_output_size(
    size: int,
    kernel_size: int,
    padding: str | int = "valid",
    strides: int = 1,
    dilation_rate: int = 1,
) -> int:
    """Length of a convolution's output along one axis, as `Conv2D` produces it.

    Equation:
        output = ⌊(size + P − k_eff) / strides⌋ + 1   [notes eq. 4.2]
        k_eff = kernel_size + (kernel_size − 1)(dilation_rate − 1); P = 0 for "valid";
        "same" pads just enough for output = ⌈size / strides⌉. (The notes write an exact
        division; frameworks round down, dropping positions where the kernel would overhang.)

    Args:
        size: input length, at least 1.
        kernel_size: kernel length, at least 1.
        padding: "valid", "same", or an int: the total zero padding P added to the axis.
        strides: stride, at least 1.
        dilation_rate: dilation, at least 1.

    Returns:
        The output length, an int (ValueError if the kernel does not fit even once).

    Example:
        >>> conv_output_size(32, 6, strides=2)  # notes §4.2: 32×32 image, 6×6 kernel, S=2
        14
    """
    size = check_int("size", size, minimum=1)
    kernel_size = check_int("kernel_size", kernel_size, minimum=1)
    strides = check_int("strides", strides, minimum=1)
    dilation_rate = check_int("dilation_rate", dilation_rate, minimum=1)
    if isinstance(padding, str) and _check_padding(padding) == "same":
        return -(-size // strides)
    total_padding = 0 if isinstance(padding, str) else check_int("padding", padding, minimum=0)
    effective_kernel = kernel_size + (kernel_size - 1) * (dilation_rate - 1)
    if size + total_padding < effective_kernel:
        raise ValueError(
            f"Expected size + padding >= the effective kernel size {effective_kernel}. "
            f"Received: size={size}, padding={padding}"
        )
    return (size + total_padding - effective_kernel) // strides + 1


def receptive_field(layers: Sequence) -> int | tuple[int, int]:
    """Size of the input window that one output unit of a stack of layers depends on.

    Walks from the last layer back to the first: one output unit sees K values of the layer
    below, and each further unit adds S more.

    Equation:
        D_in = S · (D_out − 1) + K_eff, starting from D_out = 1   [notes §4.12.1]
        with K_eff = K + (K − 1)(d − 1) for dilation d (notes §4.6). Padding does not matter.

    Args:
        layers: sequence, first layer first, of `(kernel_size, strides)` or
            `(kernel_size, strides, dilation_rate)` tuples (ints or (height, width) pairs), or
            of `keras.layers.Conv2D`, `DepthwiseConv2D`, `SeparableConv2D`, `DilatedConv2D`,
            `MaxPooling2D` or `AveragePooling2D` instances. Other layers raise TypeError.

    Returns:
        An int when the field is square, else `(height, width)`.

    Example:
        >>> receptive_field([(3, 1), (3, 1)])  # notes §4.12.1: 1 → 3 → 5
        5
        >>> receptive_field([(3, 1, 2), (2, 2), (3, 1)])  # dilated 3×3, 2×2 pooling, 3×3
        10
    """
    sizes = [1, 1]
    for index in reversed(range(len(layers))):
        kernel_size, strides, dilation_rate = _geometry(f"layers[{index}]", layers[index])
        for axis in range(2):
            effective_kernel = kernel_size[axis] + (kernel_size[axis] - 1) * (
                dilation_rate[axis] - 1
            )
            sizes[axis] = strides[axis] * (sizes[axis] - 1) + effective_kernel
    return sizes[0] if sizes[0] == sizes[1] else tuple(sizes)


def conv_as_matrix(
    kernel, input_shape: Sequence[int], strides=1, padding: str = "valid", dilation_rate=1
) -> np.ndarray:
    """The matrix that computes a convolution as one dense product.

    Unrolling input and output into vectors turns the convolution into a dense layer whose
    matrix is sparse and repeats the kernel weights in shifted positions (notes §4.4). Its
    transpose computes the transposed convolution (§4.5) with the same kernel.

    Equation:
        flatten(conv(x)) = M · flatten(x); M[(i, j, f), (s·i + d·u − p_top, s·j + d·v − p_left, c)]
        = kernel[u, v, c, f]   [notes §4.4; the notes' W is Mᵀ]
        Flattening is row-major over (row, column, channel), i.e. NumPy's `x.reshape(-1)` of a
        channels-last `(height, width, channels)` array.

    Args:
        kernel: `(kh, kw)` single-channel kernel or `(kh, kw, in_channels, filters)` kernel.
        input_shape: `(height, width)` or `(height, width, in_channels)`, without batch.
        strides: int or pair, at least 1.
        padding: "valid" or "same" (Keras' convention: the extra zero goes last).
        dilation_rate: int or pair, at least 1.

    Returns:
        `(out_height · out_width · filters, height · width · in_channels)` float NumPy array.

    Example:
        >>> conv_as_matrix(np.ones((3, 3)), (4, 4)).shape  # notes §4.4: 16 inputs, 4 outputs
        (4, 16)
    """
    kernel = np.asarray(keras.ops.convert_to_numpy(kernel), dtype="float64")
    if kernel.ndim == 2:
        kernel = kernel[:, :, None, None]  # (kh, kw, 1, 1)
    if kernel.ndim != 4 or len(input_shape) not in (2, 3):
        raise ValueError(
            "Expected a (kh, kw) or (kh, kw, in, filters) kernel and an (h, w[, in]) input "
            f"shape. Received: kernel.shape={kernel.shape}, input_shape={input_shape}"
        )
    height, width, in_channels = (*input_shape, 1)[:3]
    if in_channels != kernel.shape[2]:
        raise ValueError(
            f"Expected input_shape to have {kernel.shape[2]} channels, the kernel's. "
            f"Received: input_shape={input_shape}"
        )
    strides = _pair("strides", strides, minimum=1)
    padding = _check_padding(padding)
    dilation_rate = _pair("dilation_rate", dilation_rate, minimum=1)
    geometry = []  # per axis: (output size, padding before)
    for size, kernel_size, stride, rate in zip(
        (height, width), kernel.shape[:2], strides, dilation_rate
    ):
        out_size = conv_output_size(size, kernel_size, padding, stride, rate)
        overhang = (out_size - 1) * stride + (kernel_size - 1) * rate + 1 - size
        geometry.append((out_size, max(overhang, 0) // 2 if padding == "same" else 0))
    (out_height, top), (out_width, left) = geometry
    matrix = np.zeros((out_height, out_width, kernel.shape[3], height, width, in_channels))
    for i, j, u, v in np.ndindex(out_height, out_width, *kernel.shape[:2]):
        row = strides[0] * i + dilation_rate[0] * u - top
        column = strides[1] * j + dilation_rate[1] * v - left
        if 0 <= row < height and 0 <= column < width:  # taps on the zero padding add nothing
            matrix[i, j, :, row, column, :] += kernel[u, v].T  # (filters, in_channels)
    return matrix.reshape(out_height * out_width * kernel.shape[3], -1)


def _pair(name: str, value, minimum: int) -> tuple[int, int]:
    """`value` (an int or a pair of ints, each >= `minimum`) as a pair of ints."""
    if not isinstance(value, (tuple, list)):
        value = (check_int(name, value, minimum),) * 2
    if len(value) != 2:
        raise ValueError(
            f"Expected `{name}` to be an integer or a pair of integers. Received: {name}={value!r}"
        )
    return check_int(name, value[0], minimum), check_int(name, value[1], minimum)


def _check_padding(padding) -> str:
    # Case-insensitive, as in Keras.
    if isinstance(padding, str) and padding.lower() in _PADDINGS:
        return padding.lower()
    return check_choice("padding", padding, _PADDINGS)


def _in_channels(input_shape) -> int:
    if len(input_shape) != 4 or input_shape[-1] is None:
        raise ValueError(
            "Expected a (batch, height, width, channels) input with known channels. "
            f"Received: input_shape={input_shape}"
        )
    return int(input_shape[-1])


def _conv_config(layer) -> dict:
    return {
        "filters": layer.filters,
        "kernel_size": layer.kernel_size,
        "strides": layer.strides,
        "padding": layer.padding,
        "activation": keras.activations.serialize(layer.activation),
        "use_bias": layer.use_bias,
        "kernel_initializer": keras.initializers.serialize(layer.kernel_initializer),
        "bias_initializer": keras.initializers.serialize(layer.bias_initializer),
    }


_PADDINGS = ("valid", "same")
_CONVOLUTIONS = (
    DilatedConv2D,
    keras.layers.Conv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
)
_POOLINGS = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)


def _geometry(name: str, layer) -> tuple[tuple[int, int], ...]:
    """(kernel_size, strides, dilation_rate) pairs of one entry of `receptive_field`'s list."""
    if isinstance(layer, (tuple, list)):
        if len(layer) not in (2, 3):
            raise ValueError(
                "Expected a (kernel_size, strides[, dilation_rate]) tuple. "
                f"Received: {name}={layer!r}"
            )
        kernel_size, strides, dilation_rate = (*layer, 1)[:3]
        return (
            _pair(f"{name} kernel_size", kernel_size, minimum=1),
            _pair(f"{name} strides", strides, minimum=1),
            _pair(f"{name} dilation_rate", dilation_rate, minimum=1),
        )
    if isinstance(layer, _CONVOLUTIONS):
        return tuple(layer.kernel_size), tuple(layer.strides), tuple(layer.dilation_rate)
    if isinstance(layer, _POOLINGS):
        return tuple(layer.pool_size), tuple(layer.strides), (1, 1)
    raise TypeError(
        "Expected a tuple or a Conv2D, DepthwiseConv2D, SeparableConv2D, DilatedConv2D, "
        f"MaxPooling2D or AveragePooling2D layer. Received: {name}={layer!r}"
    )
