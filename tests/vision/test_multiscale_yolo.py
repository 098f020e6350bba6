"""The multi-scale detector: level assignment, per-level targets, summed loss, NMS across
levels and the model's outputs."""

import keras
import numpy as np
import pytest

from dlkit.vision.detection import (
    YoloLoss,
    assign_pyramid_levels,
    build_multiscale_yolo,
    decode_multiscale_predictions,
    decode_predictions,
    encode_multiscale_targets,
    encode_yolo_targets,
    multiscale_yolo_loss,
    yolo_loss,
)


def numpy(tensor):
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype=np.float64)


def test_each_object_goes_to_the_grid_whose_cells_fit_its_size():
    # Grids 8 and 4 on 32 pixels: cells of 4 and 8 pixels; the boundary is √32 ≈ 5.7 pixels.
    sides = np.array([2, 4, 5, 6, 8, 16]) / 32
    boxes = np.stack([np.zeros(6), np.zeros(6), sides, sides], axis=-1)
    np.testing.assert_array_equal(assign_pyramid_levels(boxes, (8, 4)), [0, 0, 0, 1, 1, 1])
    # A tall thin box counts by the geometric mean of its sides: √(0.5 · 0.03) ≈ 3.9 pixels.
    assert assign_pyramid_levels(np.array([0.0, 0.0, 0.5, 0.03]), (8, 4)) == 0
    # Three levels: 16, 8, 4 cells per side.
    sides = np.array([2, 4, 8, 16]) / 32
    boxes = np.stack([np.zeros(4), np.zeros(4), sides, sides], axis=-1)
    np.testing.assert_array_equal(assign_pyramid_levels(boxes, (16, 8, 4)), [0, 1, 2, 2])


def test_per_level_targets_are_the_single_scale_targets_of_the_assigned_objects():
    boxes = np.array(
        [[[0.0, 0.0, 0.125, 0.125], [0.5, 0.5, 1.0, 1.0], [0.3, 0.6, 0.425, 0.725]]], np.float32
    )
    labels = np.array([[0, 1, 2]])
    fine, coarse = encode_multiscale_targets(boxes, labels, (8, 4), 2, 3)
    np.testing.assert_array_equal(fine, encode_yolo_targets(boxes, [[0, -1, 2]], 8, 2, 3))
    np.testing.assert_array_equal(coarse, encode_yolo_targets(boxes, [[-1, 1, -1]], 4, 2, 3))
    # Two small objects in one coarse cell both survive on the fine grid.
    crowded = np.array([[[0.0, 0.0, 0.125, 0.125], [0.125, 0.125, 0.25, 0.25]]], np.float32)
    fine, coarse = encode_multiscale_targets(crowded, np.array([[0, 1]]), (8, 4), 2, 3)
    assert fine[..., 4].sum() == 2 and coarse[..., 4].sum() == 0
    assert encode_yolo_targets(crowded, np.array([[0, 1]]), 4, 2, 3)[..., 4].sum() == 1


def test_loss_is_the_sum_of_the_levels_yolo_losses():
    rng = np.random.default_rng(0)
    boxes = np.array([[[0.0, 0.0, 0.125, 0.125], [0.5, 0.5, 1.0, 1.0]]] * 2, np.float32)
    targets = encode_multiscale_targets(boxes, np.array([[0, 1], [2, -1]]), (8, 4), 2, 3)
    predictions = [rng.uniform(size=t.shape).astype("float32") for t in targets]
    expected = sum(
        numpy(yolo_loss(t, p, size, 2, 3, 4.0, 0.25))
        for t, p, size in zip(targets, predictions, (8, 4), strict=True)
    )
    received = numpy(multiscale_yolo_loss(targets, predictions, (8, 4), 2, 3, 4.0, 0.25))
    np.testing.assert_allclose(received, expected, rtol=1e-6)
    assert np.all(received > 0)
    np.testing.assert_allclose(numpy(multiscale_yolo_loss(targets, targets)), 0.0, atol=1e-6)
    # Compiled with one YoloLoss per output, Keras adds the outputs' batch means: the same.
    keras_total = sum(
        float(YoloLoss(size, 2, 3, 4.0, 0.25)(t, p))
        for t, p, size in zip(targets, predictions, (8, 4), strict=True)
    )
    assert keras_total == pytest.approx(float(np.mean(received)), rel=1e-5)


def test_decoding_suppresses_one_object_seen_at_two_levels():
    box = np.array([[[0.2, 0.2, 0.45, 0.45]]], np.float32)  # 8 pixels: the 4×4 grid's object
    fine = encode_yolo_targets(box, np.array([[1]]), 8, 2, 3)  # the same object on both grids
    coarse = encode_yolo_targets(box, np.array([[1]]), 4, 2, 3)
    coarse[..., 4] *= 0.9  # the coarse grid is less sure of it
    detections = decode_multiscale_predictions([fine, coarse], (8, 4), 2, 3)[0]
    assert len(detections) == 1
    ((found, label, score),) = detections
    assert label == 1 and score == pytest.approx(1.0)
    np.testing.assert_allclose(found, box[0, 0], atol=1e-6)
    # Different objects at different levels are all kept, in decreasing score.
    boxes = np.array([[[0.0, 0.0, 0.125, 0.125], [0.5, 0.5, 1.0, 1.0]]], np.float32)
    targets = encode_multiscale_targets(boxes, np.array([[2, 0]]), (8, 4), 2, 3)
    found = decode_multiscale_predictions(targets, (8, 4), 2, 3, score_threshold=0.5)[0]
    assert sorted(label for _, label, _ in found) == [0, 2]
    # One level alone decodes as the single-scale decoder does.
    single = decode_predictions(targets[1], 4, 2, 3)[0]
    assert [(label, score) for _, label, score in single] == [(0, 1.0)]


@pytest.mark.parametrize(
    "grid_sizes, match",
    [((4,), r"two or more grid sizes"), ((4, 8), r"Received: grid_sizes=\(4, 8\)"),
     ((8, 3), r"Received: grid_sizes=\(8, 3\)")],
)  # fmt: skip
def test_bad_grid_sizes_are_rejected(grid_sizes, match):
    with pytest.raises(ValueError, match=match):
        build_multiscale_yolo((32, 32, 3), grid_sizes)
    with pytest.raises(ValueError, match=match):
        encode_multiscale_targets(np.zeros((1, 1, 4)), np.zeros((1, 1), int), grid_sizes)


def test_mismatched_levels_are_rejected():
    targets = encode_multiscale_targets(np.zeros((1, 1, 4)), np.array([[-1]]))
    with pytest.raises(ValueError, match=r"one tensor per level.*Received: 1 tensors"):
        decode_multiscale_predictions(targets[:1])
    with pytest.raises(ValueError, match=r"y_pred. of shape \(N, 8, 8, 13\)"):
        decode_multiscale_predictions(targets[::-1])
    with pytest.raises(ValueError, match=r"Received: 2 and 1 tensors"):
        multiscale_yolo_loss(targets, targets[:1])


def test_model_predicts_on_every_grid():
    # Calls, training and the `.keras` round trip: tests/recipes/test_detect_shapes.py.
    model = build_multiscale_yolo((16, 16, 3), grid_sizes=(4, 2), num_boxes=2, filters=4)
    assert [tuple(shape) for shape in model.output_shape] == [(None, 4, 4, 13), (None, 2, 2, 13)]
    pyramid = model.get_layer("feature_pyramid")
    assert [tuple(x.shape) for x in pyramid.input] == [(None, 4, 4, 16), (None, 2, 2, 32)]
    assert [layer.name for layer in model.layers if "yolo_head" in layer.name] == [
        "yolo_head4",
        "yolo_head2",
    ]
