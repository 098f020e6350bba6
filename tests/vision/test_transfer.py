import keras
import numpy as np
import pytest

from dlkit.vision.classifier import build_cnn_classifier
from dlkit.vision.transfer import freeze_up_to, transfer_model, unfreeze_from


def _flags(model):
    return {layer.name: layer.trainable for layer in model.layers[1:]}


def test_freeze_up_to_sets_flags_before_and_after_the_named_layer():
    model = build_cnn_classifier(filters=4, dense_units=8)
    assert freeze_up_to(model, "pool") == ["conv1", "conv2", "pool"]
    assert _flags(model) == {
        "conv1": False,
        "conv2": False,
        "pool": False,
        "flatten": True,
        "dense": True,
        "logits": True,
    }
    assert freeze_up_to(model, "conv2", inclusive=False) == ["conv1"]
    assert [name for name, trainable in _flags(model).items() if not trainable] == ["conv1"]
    assert len(model.trainable_weights) == 6  # conv2, dense, logits: kernel and bias each


def test_unfreeze_from_makes_the_named_layer_and_later_ones_trainable():
    model = build_cnn_classifier(filters=4, dense_units=8)
    freeze_up_to(model, "logits")
    assert model.trainable_weights == []
    assert unfreeze_from(model, "dense") == ["dense", "logits"]
    assert [name for name, trainable in _flags(model).items() if trainable] == ["dense", "logits"]


def test_transfer_model_shares_the_base_weights_and_trains_only_the_head():
    keras.utils.set_random_seed(0)
    base = build_cnn_classifier(filters=4, dense_units=8)
    model = transfer_model(base, "pool", num_classes=3, head_units=(5,))
    assert [layer.name for layer in model.layers[-3:]] == [
        "head_flatten",
        "head_dense1",
        "head_logits",
    ]
    assert model.get_layer("conv1") is base.get_layer("conv1")
    assert [w.path for w in model.trainable_weights] == [
        w.path
        for w in model.get_layer("head_dense1").weights + model.get_layer("head_logits").weights
    ]
    images = np.random.default_rng(0).random((16, 8, 8, 1)).astype("float32")
    labels = np.arange(16) % 3
    before = model.predict(images, verbose=0)
    # Changing the base's weights changes the new model's output.
    conv1 = base.get_layer("conv1")
    conv1.kernel.assign(conv1.kernel * 2.0)
    assert not np.allclose(model.predict(images, verbose=0), before)
    frozen = [np.copy(w) for w in base.get_layer("conv2").get_weights()]
    head = np.copy(model.get_layer("head_logits").get_weights()[0])
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(images, labels, batch_size=8, epochs=2, verbose=0)
    for after, original in zip(base.get_layer("conv2").get_weights(), frozen):
        np.testing.assert_array_equal(after, original)
    assert not np.allclose(model.get_layer("head_logits").get_weights()[0], head)
    # Fine-tuning: after unfreezing and compiling again, the shared layers learn too.
    unfreeze_from(model, "conv1")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(images, labels, batch_size=8, epochs=1, verbose=0)
    assert not np.allclose(base.get_layer("conv2").get_weights()[0], frozen[0])


def test_transfer_model_round_trips_through_keras_file(tmp_path):
    base = build_cnn_classifier(filters=4, dense_units=8)
    model = transfer_model(base, "dense", num_classes=2, head_units=())
    images = np.random.default_rng(1).random((3, 8, 8, 1)).astype("float32")
    model.save(tmp_path / "transfer.keras")
    loaded = keras.saving.load_model(tmp_path / "transfer.keras")
    np.testing.assert_allclose(
        loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6
    )
    assert not loaded.get_layer("conv1").trainable


def test_bad_arguments_are_rejected():
    model = build_cnn_classifier(filters=4, dense_units=8)
    with pytest.raises(ValueError, match=r"layer_name=.*'conv9'"):
        freeze_up_to(model, "conv9")
    with pytest.raises(ValueError, match=r"layer_name='nope'"):
        unfreeze_from(model, "nope")
    with pytest.raises(ValueError, match=r"layer_name='nope'"):
        transfer_model(model, "nope", num_classes=2)
    with pytest.raises(ValueError, match=r"num_classes=0"):
        transfer_model(model, "pool", num_classes=0)
    with pytest.raises(ValueError, match=r"head_units=\(0,\)"):
        transfer_model(model, "pool", num_classes=2, head_units=(0,))
    with pytest.raises(ValueError, match=r"dropout=1.0"):
        transfer_model(model, "pool", num_classes=2, dropout=1.0)
    with pytest.raises(TypeError, match=r"model="):
        freeze_up_to("not a model", "conv1")
