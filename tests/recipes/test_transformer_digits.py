import json

import keras
import numpy as np
import pytest

from dlkit.data import digit_sequences, tokens_to_text
from dlkit.export import verify
from dlkit.recipes import transformer_digits


@pytest.mark.slow
def test_quick_config_reverses_held_out_strings_and_writes_every_artefact(tmp_path):
    config = transformer_digits.Config(
        **transformer_digits.QUICK_CONFIG,
        beam_width=1,  # the greedy search again: one compiled generator (beam search has its tests)
        export="saved_model",
        output_dir=str(tmp_path),
        verbose=0,
    )
    results = transformer_digits.main(config)
    assert results["backend"] == keras.backend.backend()
    assert (results["num_train"], results["num_test"]) == (config.num_train, config.num_test)
    assert results["greedy_exact_accuracy"] >= transformer_digits.EXACT_MATCH_GATE
    for name in ("model.keras", "generator.keras", "attention.png", "history.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert (tmp_path / "generator_export" / "saved_model.pb").is_file()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("greedy_exact_accuracy", "beam_exact_accuracy"):
        assert metrics[key] == pytest.approx(results[key])
    assert results["beam_exact_accuracy"] == results["greedy_exact_accuracy"]  # width 1: greedy
    # The saved greedy generator reproduces the reported held-out accuracy ...
    test = digit_sequences(
        "reverse",
        num_train=config.num_train,
        num_test=config.num_test,
        max_length=config.max_length,
        seed=config.seed,
    )["test"]
    generator = keras.saving.load_model(tmp_path / "generator.keras")
    generated = np.asarray(generator.predict_on_batch(test["source"]))
    assert generated.shape == (config.num_test, config.max_length + 1)
    accuracy = np.mean(transformer_digits.exact_match(generated, test["targets"]))
    assert accuracy == pytest.approx(results["greedy_exact_accuracy"], abs=1e-9)
    assert [example["greedy"] for example in metrics["examples"]] == [
        tokens_to_text(row) for row in generated[:5]
    ]
    # ... and the SavedModel serves exactly the same token ids.
    assert verify(results["files"]["generator_export"], test["source"], generated, atol=0) == 0


@pytest.mark.parametrize("field, value", [("task", "copy"), ("beam_width", 0), ("epochs", 0)])
def test_bad_config_values_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        transformer_digits.Config(**{field: value})


def test_interrupted_run_resumes_from_its_backup(tmp_path, interrupt_after_second_epoch):

    config = transformer_digits.Config(
        num_train=120,
        num_test=20,
        max_length=4,
        model_dim=8,
        num_heads=2,
        num_layers=1,
        epochs=3,
        batch_size=60,
        beam_width=1,
        export="none",
        output_dir=str(tmp_path),
        verbose=0,
    )
    with pytest.raises(KeyboardInterrupt):
        transformer_digits.main(config)
    assert (tmp_path / "backup").exists()
    interrupt_after_second_epoch()  # back to the original callback
    results = transformer_digits.main(config)
    assert results["epochs_run_this_session"] == 1  # epochs 1-2 came from the backup
    assert not (tmp_path / "backup").exists()  # removed once training completed
