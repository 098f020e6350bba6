"""Feature pyramid: a top-down pathway with lateral connections [notes §4.13.2]."""

from __future__ import annotations

import itertools

import keras
from keras import ops

from dlkit.validation import check_int

__all__ = ["FeaturePyramid"]


@keras.saving.register_keras_serializable(package="dlkit")
class FeaturePyramid(keras.layers.Layer):
    """Recombines a backbone's feature maps along a top-down pathway, one output per level.

    A convolutional backbone computes a pyramid of feature maps: fine ones that localise
    precisely but see little context, coarse ones that see the whole object but have lost
    detail. Predicting from the coarsest map only (YOLO v1) misses small objects; predicting
    from each backbone map alone uses weak features at the fine levels. The feature pyramid
    network recombines them along a backward (top-down) pathway [notes §4.13.2, option 4]: a
    1×1 lateral convolution brings every backbone map to `filters` channels; from the coarsest
    level down, the merged map of the level above is upsampled ×2 (nearest neighbour) and
    added to the lateral map; a 3×3 convolution smooths each sum (it reduces the aliasing of
    the upsampling). Every output then has coarse-level context at its own resolution.

    Equation (levels l = 1 … L from fine to coarse, C_l the backbone maps, `*` convolution
    with "same" padding):

        lateral_l = lateral_kernel_l * C_l + lateral_bias_l                 (1×1)
        merged_L  = lateral_L
        merged_l  = lateral_l + upsample_2(merged_{l+1})                   l = L-1, …, 1
        P_l       = smoothing_kernel_l * merged_l + smoothing_bias_l        (3×3)

    with upsample_2 repeating every row and column twice [notes §4.13.2].

    Args:
        filters: channels of the lateral maps and of every output, at least 1.
        num_outputs: how many levels to return, finest first; `None` (default) returns all L.
            A detector that predicts at the finest level only (`build_yolo(fpn=True)`) takes
            1, and the layer then has no smoothing convolution for the levels it drops.
        **kwargs: other keyword arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        inputs: a list of L >= 2 channels-last feature maps from fine to coarse, level l of
            shape (B, H_l, W_l, C_l) with H_l = 2 H_{l+1} and W_l = 2 W_{l+1}; the channels
            C_l may differ.

    Returns:
        A list of L maps (or `num_outputs`), level l of shape (B, H_l, W_l, filters).

    Raises:
        ValueError: for fewer than two inputs, inputs that are not rank 4, or levels that do
            not halve the height and width of the level below.

    Example:

        >>> import numpy as np
        >>> pyramid = FeaturePyramid(filters=8)
        >>> fine, coarse = np.ones((2, 8, 8, 4), "float32"), np.ones((2, 4, 4, 16), "float32")
        >>> [tuple(p.shape) for p in pyramid([fine, coarse])]
        [(2, 8, 8, 8), (2, 4, 4, 8)]

    Reference:
        Lin et al., "Feature Pyramid Networks for Object Detection", CVPR 2017
        (https://arxiv.org/abs/1612.03144).
    """

    def __init__(self, filters, num_outputs=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters)
        self.num_outputs = None if num_outputs is None else check_int("num_outputs", num_outputs)
        self.lateral_kernels = []
        self.lateral_biases = []
        self.smoothing_kernels = []
        self.smoothing_biases = []

    def build(self, input_shape):
        shapes = _check_levels(input_shape)
        if self.num_outputs is not None and self.num_outputs > len(shapes):
            raise ValueError(
                f"Expected `num_outputs` <= the number of levels, {len(shapes)}. Received: "
                f"num_outputs={self.num_outputs}"
            )
        for level, shape in enumerate(shapes):
            self.lateral_kernels.append(
                self.add_weight(
                    shape=(1, 1, shape[-1], self.filters),
                    initializer="glorot_uniform",
                    name=f"lateral_kernel_{level}",
                )
            )
            self.lateral_biases.append(
                self.add_weight(
                    shape=(self.filters,), initializer="zeros", name=f"lateral_bias_{level}"
                )
            )
            if level >= self._num_outputs(len(shapes)):
                continue
            self.smoothing_kernels.append(
                self.add_weight(
                    shape=(3, 3, self.filters, self.filters),
                    initializer="glorot_uniform",
                    name=f"smoothing_kernel_{level}",
                )
            )
            self.smoothing_biases.append(
                self.add_weight(
                    shape=(self.filters,), initializer="zeros", name=f"smoothing_bias_{level}"
                )
            )

    def call(self, inputs):
        _check_levels([tuple(x.shape) for x in inputs])
        lateral = [
            ops.conv(features, kernel, padding="same") + bias
            for features, kernel, bias in zip(
                inputs, self.lateral_kernels, self.lateral_biases, strict=True
            )
        ]
        merged = [lateral[-1]]
        for level in range(len(inputs) - 2, -1, -1):
            above = ops.repeat(ops.repeat(merged[0], 2, axis=1), 2, axis=2)  # (B, H_l, W_l, F)
            merged.insert(0, lateral[level] + above)
        return [
            ops.conv(level_map, kernel, padding="same") + bias
            for level_map, kernel, bias in zip(
                merged[: self._num_outputs(len(inputs))],
                self.smoothing_kernels,
                self.smoothing_biases,
                strict=True,
            )
        ]

    def _num_outputs(self, num_levels: int) -> int:
        return num_levels if self.num_outputs is None else self.num_outputs

    def compute_output_shape(self, input_shape):
        shapes = input_shape[: self._num_outputs(len(input_shape))]
        return [(*tuple(shape)[:-1], self.filters) for shape in shapes]

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "num_outputs": self.num_outputs}


def _check_levels(input_shape) -> list[tuple]:
    """The shapes of a fine-to-coarse list of rank-4 maps, each level half the one below."""
    if not isinstance(input_shape, (list, tuple)) or len(input_shape) < 2:
        raise ValueError(
            "Expected `inputs` to be a list of at least two feature maps from fine to coarse. "
            f"Received: input_shape={input_shape!r}"
        )
    shapes = [tuple(shape) for shape in input_shape]
    for level, shape in enumerate(shapes):
        if len(shape) != 4:
            raise ValueError(
                f"Expected every feature map to have rank 4 (B, H, W, C). Received: level "
                f"{level} with shape {shape}"
            )
    for level, (fine, coarse) in enumerate(itertools.pairwise(shapes)):
        for axis in (1, 2):
            if (
                fine[axis] is not None
                and coarse[axis] is not None
                and fine[axis] != 2 * coarse[axis]
            ):
                raise ValueError(
                    "Expected each level to halve the height and width of the level below it. "
                    f"Received: level {level} with shape {fine} and level {level + 1} with "
                    f"shape {coarse}"
                )
    return shapes
