"""Test configuration shared by every backend run.

The suite runs once per Keras backend (``python tests/run_backends.py``), each in its own
process, so the backend is fixed before Keras is first imported.
"""

import os

# Two cores: torch with several threads next to another busy process runs many times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import pytest

if keras.backend.backend() == "torch":
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def in_tmp_dir(tmp_path, monkeypatch):
    """Runs the test inside a fresh temporary working directory (recipes write to runs/)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def offline_tfds(tmp_path, monkeypatch):
    """tensorflow-datasets without a network: returns (data_dir, tfds.testing.mock_data).

    The download check answers yes, so that ``dlkit.data.load`` goes on to ``tfds``, whose
    downloads ``mock_data`` replaces with generated examples; no test opens a socket.
    """
    tfds = pytest.importorskip("tensorflow_datasets")
    from dlkit.data import datasets

    monkeypatch.setattr(datasets, "_check_download_reachable", lambda timeout: True)
    return str(tmp_path / "tfds"), tfds.testing.mock_data


@pytest.fixture
def interrupt_after_second_epoch(monkeypatch):
    """Makes every `keras.callbacks.BackupAndRestore` raise KeyboardInterrupt after writing its
    backup at the end of the second epoch; calling the returned function restores the original.
    """
    original = keras.callbacks.BackupAndRestore

    class InterruptAfterSecondEpoch(original):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)  # writes the backup first
            if epoch == 1:
                raise KeyboardInterrupt

    monkeypatch.setattr(keras.callbacks, "BackupAndRestore", InterruptAfterSecondEpoch)
    return lambda: monkeypatch.setattr(keras.callbacks, "BackupAndRestore", original)
