import keras
import numpy as np
import pytest

from dlkit.vision.detection import (
    YoloHead,
    YoloLoss,
    average_precisions,
    build_yolo,
    decode_predictions,
    encode_yolo_targets,
    iou,
    mean_average_precision,
    non_max_suppression,
    pairwise_iou,
    yolo_loss,
)


def numpy(tensor):
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype=np.float64)


# --- IoU (eq. 4.4) ---------------------------------------------------------------------------


def test_iou_of_identical_disjoint_and_overlapping_boxes():
    a = np.array([[0.1, 0.1, 0.5, 0.5], [0.0, 0.0, 0.2, 0.2], [0.0, 0.0, 0.4, 0.4]])
    b = np.array([[0.1, 0.1, 0.5, 0.5], [0.5, 0.5, 0.9, 0.9], [0.2, 0.2, 0.6, 0.6]])
    # The third pair overlaps on 0.2 x 0.2 = 0.04 of two 0.16 boxes: 0.04 / 0.28.
    np.testing.assert_allclose(numpy(iou(a, b)), [1.0, 0.0, 0.04 / 0.28], atol=1e-6)
    # Touching edges do not overlap, and a zero-area pair gives 0 (not NaN).
    assert numpy(iou([0, 0, 0.5, 0.5], [0, 0.5, 0.5, 1.0])) == 0.0
    assert numpy(iou([0.3, 0.3, 0.3, 0.3], [0.3, 0.3, 0.3, 0.3])) == 0.0


def test_pairwise_iou_compares_every_pair():
    a = np.array([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]])
    b = np.array([[0.0, 0.0, 0.5, 0.5], [0.0, 0.25, 0.5, 0.75], [0.5, 0.5, 1.0, 1.0]])
    expected = [[1.0, 1 / 3, 0.0], [0.0, 0.0, 1.0]]
    np.testing.assert_allclose(numpy(pairwise_iou(a, b)), expected, atol=1e-6)


def test_iou_rejects_boxes_without_four_coordinates():
    with pytest.raises(ValueError, match=r"boxes_b.*last axis of size 4"):
        iou(np.zeros((2, 4)), np.zeros((2, 3)))


# --- Target encoding -------------------------------------------------------------------------


def test_encoding_puts_the_box_in_the_cell_of_its_centre():
    # Centre (row 0.55, column 0.3) on a 4x4 grid: row 2, column 1; offsets 0.2 and 0.2.
    boxes = np.array([[[0.45, 0.2, 0.65, 0.4], [0.0, 0.0, 0.0, 0.0]]])
    targets = encode_yolo_targets(boxes, np.array([[1, -1]]), grid_size=4, num_boxes=2)
    assert targets.shape == (1, 4, 4, 2 * 5 + 3)
    np.testing.assert_allclose(targets[0, 2, 1, :5], [0.2, 0.2, 0.2, 0.2, 1.0], atol=1e-6)
    np.testing.assert_array_equal(targets[0, 2, 1, 5:10], 0.0)  # the second slot stays empty
    np.testing.assert_array_equal(targets[0, 2, 1, 10:], [0.0, 1.0, 0.0])
    occupied = targets[..., 4] > 0
    assert occupied.sum() == 1  # the padding row (-1) is ignored
    assert targets[~occupied].sum() == 0.0


def test_encoding_round_trips_through_decoding():
    # Three boxes in three different cells of a 6x6 grid.
    boxes = np.array(
        [[[0.05, 0.1, 0.2, 0.3], [0.4, 0.55, 0.8, 0.7], [0.7, 0.02, 0.98, 0.31]]], np.float32
    )
    labels = np.array([[0, 2, 1]])
    targets = encode_yolo_targets(boxes, labels, grid_size=6, num_boxes=2, num_classes=3)
    detections = decode_predictions(targets, 6, 2, 3, score_threshold=0.5)[0]
    assert len(detections) == 3
    decoded = {label: box for box, label, _ in detections}
    for box, label in zip(boxes[0], labels[0], strict=True):
        np.testing.assert_allclose(decoded[label], box, atol=1e-5)
    assert all(score == pytest.approx(1.0) for _, _, score in detections)


def test_second_object_in_an_occupied_cell_is_dropped():
    boxes = np.array([[[0.0, 0.0, 0.2, 0.2], [0.05, 0.05, 0.15, 0.15]]])
    targets = encode_yolo_targets(boxes, np.array([[0, 1]]), grid_size=2, num_boxes=1)
    np.testing.assert_array_equal(targets[0, 0, 0, 5:], [1.0, 0.0, 0.0])


@pytest.mark.parametrize(
    "boxes, labels, message",
    [
        ([[[0.5, 0.1, 0.3, 0.4]]], [[0]], r"y_min <= y_max.*boxes containing \[0\.5, 0\.1"),
        ([[[0.1, 0.1, 0.3, 1.2]]], [[0]], r"inside \[0, 1\].*Received: boxes containing"),
        ([[[-0.1, 0.1, 0.3, 0.4]]], [[0]], r"Received: boxes containing \[-0\.1"),
        ([[0.1, 0.1, 0.3]], [[0]], r"shape \(\.\.\., 4\).*Received: boxes with shape \(1, 3\)"),
        ([[[0.1, 0.1, 0.3, 0.4]]], [[3]], r"labels. < num_classes=3.*Received: labels"),
        ([[[0.1, 0.1, 0.3, 0.4]]], [[0, 1]], r"Received: boxes with shape \(1, 1, 4\)"),
    ],
)
def test_encoding_rejects_bad_boxes_and_labels(boxes, labels, message):
    with pytest.raises(ValueError, match=message):
        encode_yolo_targets(np.array(boxes), np.array(labels), grid_size=4, num_boxes=2)


def test_encoding_rejects_a_bad_grid():
    with pytest.raises(ValueError, match=r"Received: grid_size=0"):
        encode_yolo_targets(np.zeros((1, 1, 4)), np.array([[-1]]), grid_size=0)


# --- Loss (eqs. 4.6-4.8) ---------------------------------------------------------------------


def reference_yolo_loss(y_true, y_pred, S, B, C, lambda_coord, lambda_noobj):
    """Loop-by-loop NumPy transcription of eqs. 4.6-4.8 with IoU confidence targets."""

    def corners(x, y, w, h, row, column):
        cy, cx = (row + y) / S, (column + x) / S
        return np.array([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2])

    def box_iou(a, b):
        inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(
            0.0, min(a[3], b[3]) - max(a[1], b[1])
        )
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / max(union, 1e-9)

    losses = []
    for n in range(len(y_true)):
        loc = cls = 0.0
        for i in range(S):
            for j in range(S):
                truth, prediction = y_true[n, i, j], y_pred[n, i, j]
                has_object = truth[4] == 1.0
                true_box = corners(*truth[:4], i, j)
                overlaps = [box_iou(corners(*prediction[5 * b : 5 * b + 4], i, j), true_box)
                            for b in range(B)]  # fmt: skip
                responsible = int(np.argmax(overlaps)) if has_object else -1
                for b in range(B):
                    x, y, w, h, confidence = prediction[5 * b : 5 * b + 5]
                    if b == responsible:
                        loc += (truth[0] - x) ** 2 + (truth[1] - y) ** 2
                        loc += (np.sqrt(truth[2]) - np.sqrt(w)) ** 2
                        loc += (np.sqrt(truth[3]) - np.sqrt(h)) ** 2
                        cls += (overlaps[b] - confidence) ** 2
                    else:
                        cls += lambda_noobj * confidence**2
                if has_object:
                    cls += np.sum((truth[5 * B :] - prediction[5 * B :]) ** 2)
        losses.append(lambda_coord * loc + cls)
    return np.array(losses)


def test_loss_is_zero_for_a_perfect_prediction():
    data_boxes = np.array(
        [[[0.1, 0.1, 0.4, 0.5], [0.6, 0.6, 0.9, 0.8]], [[0.2, 0.3, 0.7, 0.9], [0] * 4]]
    )
    targets = encode_yolo_targets(data_boxes, np.array([[1, 2], [0, -1]]), 4, 2, 3)
    np.testing.assert_allclose(numpy(yolo_loss(targets, targets, 4, 2, 3)), [0.0, 0.0], atol=1e-6)


def test_loss_matches_a_numpy_transcription_of_the_equations():
    rng = np.random.default_rng(3)
    S, B, C = 4, 2, 3  # the shapes of the test above, so that JAX reuses its compiled ops
    boxes = np.array(
        [[[0.1, 0.1, 0.3, 0.5], [0.5, 0.6, 0.9, 0.95]], [[0.3, 0.2, 0.8, 0.6], [0] * 4]]
    )
    targets = encode_yolo_targets(boxes, np.array([[2, 0], [1, -1]]), S, B, C)
    predictions = rng.uniform(0.05, 0.95, size=targets.shape).astype(np.float32)
    # Put the second predictor of each occupied cell near its truth: it becomes the responsible
    # one there, and the IoU confidence targets are not all zero.
    occupied = targets[..., 4] > 0
    predictions[..., 5:9][occupied] = targets[..., :4][occupied] + 0.03
    expected = reference_yolo_loss(targets, predictions.astype(np.float64), S, B, C, 5.0, 0.5)
    actual = numpy(yolo_loss(targets, predictions, S, B, C, lambda_coord=5.0, lambda_noobj=0.5))
    np.testing.assert_allclose(actual, expected, rtol=1e-4)
    loss = YoloLoss(S, B, C)
    assert float(loss(targets, predictions)) == pytest.approx(expected.mean(), rel=1e-4)


def test_loss_rejects_outputs_that_disagree_with_the_grid():
    targets = np.zeros((1, 4, 4, 13), np.float32)
    with pytest.raises(ValueError, match=r"num_boxes=3.*= 18\).*Received: y_true with shape"):
        yolo_loss(targets, targets, grid_size=4, num_boxes=3, num_classes=3)
    with pytest.raises(ValueError, match=r"\(N, 5, 5, 13\).*Received: y_true with shape"):
        yolo_loss(targets, targets, grid_size=5, num_boxes=2, num_classes=3)


# --- NMS, decoding and mAP -------------------------------------------------------------------


def test_nms_keeps_the_best_of_overlapping_boxes_and_both_of_disjoint_ones():
    boxes = np.array([[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.52, 0.5], [0.6, 0.6, 0.9, 0.9]])
    kept = non_max_suppression(boxes, np.array([0.6, 0.9, 0.4]), iou_threshold=0.5)
    assert kept.tolist() == [1, 2]
    assert non_max_suppression(boxes, np.array([0.6, 0.9, 0.4]), 0.5, max_outputs=1).tolist() == [1]
    assert non_max_suppression(boxes[[0, 2]], np.array([0.3, 0.8]), 0.5).tolist() == [1, 0]
    assert non_max_suppression(np.zeros((0, 4)), np.zeros(0)).tolist() == []
    with pytest.raises(ValueError, match=r"Received: iou_threshold=1\.5"):
        non_max_suppression(boxes, np.ones(3), iou_threshold=1.5)


def test_decoding_scores_boxes_by_class_probability_times_confidence():
    prediction = np.zeros((1, 2, 2, 5 * 2 + 2), np.float32)
    # Cell (0, 0): two nearly identical boxes, confidences 0.9 and 0.5; p(class 1) = 0.8.
    prediction[0, 0, 0, :10] = [0.5, 0.5, 0.4, 0.4, 0.9, 0.5, 0.52, 0.4, 0.4, 0.5]
    prediction[0, 0, 0, 10:] = [0.2, 0.8]
    detections = decode_predictions(prediction, 2, 2, 2, score_threshold=0.15, iou_threshold=0.5)
    assert [(label, round(score, 4)) for _, label, score in detections[0]] == [
        (1, 0.72),  # 0.8 * 0.9; the 0.8 * 0.5 duplicate is suppressed
        (0, 0.18),  # 0.2 * 0.9: NMS works per class; 0.2 * 0.5 = 0.1 is below the threshold
    ]
    np.testing.assert_allclose(detections[0][0][0], [0.05, 0.05, 0.45, 0.45], atol=1e-6)
    with pytest.raises(ValueError, match=r"\(N, 2, 2, 12\).*Received: y_pred with shape"):
        decode_predictions(prediction[..., :11], 2, 2, 2)


def test_map_is_one_for_perfect_detections_and_known_for_a_crafted_case():
    truth_boxes = np.array([[[0.1, 0.1, 0.3, 0.3], [0.6, 0.6, 0.9, 0.9], [0, 0, 0, 0]]])
    truth = list(zip(truth_boxes, np.array([[0, 1, -1]]), strict=True))
    perfect = [[(truth_boxes[0, 0], 0, 0.9), (truth_boxes[0, 1], 1, 0.8)]]
    assert mean_average_precision(perfect, truth, num_classes=3) == 1.0
    # One class, two objects in two images. Ranked detections: TP (0.9), FP (0.8), TP (0.7):
    # precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 → AP = 1/2 · 1 + 1/2 · 2/3 = 5/6.
    box_a, box_b = np.array([0.1, 0.1, 0.4, 0.4]), np.array([0.5, 0.5, 0.8, 0.8])
    truth = [(box_a[np.newaxis], np.array([0])), (box_b[np.newaxis], np.array([0]))]
    found = [
        [(box_a + 0.01, 0, 0.9), (np.array([0.6, 0.0, 0.9, 0.2]), 0, 0.8)],
        [(box_b, 0, 0.7), (box_b, 0, 0.6)],  # the duplicate ranks after the last TP
    ]
    assert average_precisions(found, truth, num_classes=1)[0] == pytest.approx(5 / 6)
    # With a second class that has ground truth but no detection, mAP halves.
    truth_2 = [(np.stack([box_a, box_b]), np.array([0, 1])), (box_b[np.newaxis], np.array([0]))]
    ap = average_precisions(found, truth_2, num_classes=2)
    np.testing.assert_allclose(ap, [5 / 6, 0.0])
    assert mean_average_precision(found, truth_2, num_classes=2) == pytest.approx(5 / 12)
    with pytest.raises(ValueError, match=r"len\(detections\)=2, len\(ground_truth\)=1"):
        mean_average_precision(found, truth[:1], num_classes=1)


# --- Model -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fpn_model():
    return build_yolo((8, 8, 3), grid_size=4, num_boxes=2, num_classes=3, filters=4, fpn=True)


@pytest.mark.parametrize("fpn", [False, True])
def test_model_output_shapes(fpn, fpn_model):
    model = fpn_model if fpn else build_yolo((8, 8, 3), 4, 2, 3, filters=4)
    assert model.output_shape == (None, 4, 4, 13)
    outputs = numpy(model(np.random.default_rng(0).uniform(size=(2, 8, 8, 3))))
    assert outputs.shape == (2, 4, 4, 13)
    assert np.all((outputs >= 0) & (outputs <= 1))
    np.testing.assert_allclose(outputs[..., 10:].sum(-1), 1.0, atol=1e-5)
    names = {layer.name for layer in model.layers}
    assert ("feature_pyramid" in names) == fpn
    if fpn:  # an odd S/2 (3 × 3) deep map upsamples back to the 6 × 6 grid
        wide = build_yolo((12, 12, 3), grid_size=6, num_boxes=2, num_classes=3, filters=4, fpn=True)
        assert wide.output_shape == (None, 6, 6, 13)


def test_model_rejects_a_bad_geometry():
    with pytest.raises(ValueError, match=r"Received: input_shape=\(24, 24, 3\), grid_size=4"):
        build_yolo((24, 24, 3), grid_size=4)
    with pytest.raises(ValueError, match=r"even `grid_size`.*Received: grid_size=3"):
        build_yolo((24, 24, 3), grid_size=3, fpn=True)


def test_keras_file_round_trip(tmp_path, fpn_model):
    fpn_model.compile(optimizer="adam", loss=YoloLoss(4, 2, 3, lambda_noobj=0.25))
    fpn_model.optimizer.build(fpn_model.trainable_variables)
    images = np.random.default_rng(1).uniform(size=(2, 8, 8, 3)).astype("float32")
    fpn_model.save(tmp_path / "yolo.keras")
    restored = keras.saving.load_model(tmp_path / "yolo.keras")
    np.testing.assert_allclose(numpy(restored(images)), numpy(fpn_model(images)), atol=1e-5)
    assert isinstance(restored.get_layer("yolo_head"), YoloHead)
    assert restored.loss.get_config()["lambda_noobj"] == 0.25


def test_a_few_training_steps_reduce_the_loss():
    from dlkit.data.shapes import shapes

    keras.utils.set_random_seed(0)
    data = shapes(32, image_size=8, max_shapes=2, seed=0)
    targets = encode_yolo_targets(data["boxes"], data["labels"], 4, 2, 3)
    model = build_yolo((8, 8, 3), grid_size=4, num_boxes=2, num_classes=3, filters=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=YoloLoss(4, 2, 3))
    history = model.fit(data["images"], targets, batch_size=16, epochs=8, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.6 * losses[0], losses
