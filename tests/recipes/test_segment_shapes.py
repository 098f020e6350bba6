import json

import keras
import numpy as np
import pytest

from dlkit.data import shapes
from dlkit.recipes import segment_shapes
from dlkit.vision.segmentation import mean_iou, predict_masks


@pytest.mark.slow
def test_tiny_config_trains_and_writes_every_artefact(tmp_path):
    config = segment_shapes.Config(
        num_train=16,
        num_test=4,
        image_size=16,
        filters=2,
        depth=1,
        epochs=1,
        batch_size=8,
        classifier_epochs=1,
        canvas_rows=1,
        canvas_columns=3,
        output_dir=str(tmp_path),
        verbose=0,
    )
    results = segment_shapes.main(config)
    assert results["backend"] == keras.backend.backend()
    for name in ("model.keras", "segmentation.png", "heatmap.png", "history.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics["test_class_iou"]) == {"background", "circle", "square", "triangle"}
    # The mean IoU is the mean over the classes present of the IoUs reported per class.
    present = [value for value in metrics["test_class_iou"].values() if value is not None]
    assert metrics["test_mean_iou"] == pytest.approx(np.mean(present), abs=1e-3)
    heatmap = metrics["heatmap"]
    # A canvas of 1×3 digits (8×24) gives a 4×12 map after pooling and 1×9 windows of 4×4.
    assert heatmap["canvas_shape"] == [8, 24, 1]
    assert heatmap["heatmap_shape"] == [1, 9, 10]
    assert len(heatmap["heatmap_classes_at_digits"]) == 3
    assert heatmap["convolutionalized_max_abs_difference"] < 1e-4
    # The saved model reproduces the reported mean IoU on the same test images.
    model = keras.saving.load_model(tmp_path / "model.keras")
    test = shapes(4, image_size=16, seed=config.seed + 1)
    score = mean_iou(test["masks"], predict_masks(model, test["images"]), 4)
    assert score == pytest.approx(results["test_mean_iou"], abs=1e-4)


@pytest.mark.slow
def test_quick_config_reaches_the_target_mean_iou(tmp_path):
    config = segment_shapes.Config(
        **segment_shapes.QUICK_CONFIG, output_dir=str(tmp_path), verbose=0
    )
    results = segment_shapes.main(config)
    assert results["test_mean_iou"] >= segment_shapes.TARGET_MEAN_IOU, results["test_class_iou"]


def test_canvas_tiles_digits_side_by_side():
    digits = np.arange(6 * 64, dtype="float32").reshape(6, 8, 8, 1)
    canvas = segment_shapes.digit_canvas(digits, rows=2, columns=3)
    assert canvas.shape == (16, 24, 1)
    np.testing.assert_array_equal(canvas[8:, 16:], digits[5])
    np.testing.assert_array_equal(canvas[:8, 8:16], digits[1])
    colours = segment_shapes.colour_masks(np.array([[0, 3]]))
    np.testing.assert_allclose(colours[0, 0], 0.0)


@pytest.mark.parametrize(
    "field, value", [("epochs", 0), ("image_size", 30), ("learning_rate", -1.0), ("filters", 0)]
)
def test_bad_config_values_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        segment_shapes.Config(**{field: value})
