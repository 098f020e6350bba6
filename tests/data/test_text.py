"""Tests of dlkit.data.text.load_text over tensorflow-datasets, offline (``mock_data``)."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
tfds = pytest.importorskip("tensorflow_datasets")

from dlkit.data import datasets as datasets_module  # noqa: E402
from dlkit.data.datasets import DatasetUnavailableError  # noqa: E402
from dlkit.data.text import TEXT_DATASETS, load_text  # noqa: E402


def _collect(dataset):
    return [(np.asarray(token_ids), np.asarray(labels)) for token_ids, labels in dataset]


@pytest.mark.parametrize("name", ["imdb_reviews", "ag_news_subset"])
def test_batches_shapes_dtypes_and_ids(offline_tfds, name):
    data_dir, mock_data = offline_tfds
    with mock_data(num_examples=10):
        dataset, vocabulary = load_text(
            name, sequence_length=12, vocabulary_size=20, batch_size=4, data_dir=data_dir
        )
        batches = _collect(dataset)
    assert [len(labels) for _, labels in batches] == [4, 4, 2]
    token_ids, labels = batches[0]
    assert token_ids.shape == (4, 12) and token_ids.dtype == np.int32
    assert labels.shape == (4,) and labels.dtype == np.int32
    all_ids = np.concatenate([token_ids for token_ids, _ in batches])
    all_labels = np.concatenate([labels for _, labels in batches])
    assert 3 <= len(vocabulary) <= 20 and vocabulary[:2] == ["", "[UNK]"]
    assert all(isinstance(word, str) for word in vocabulary)
    assert all_ids.min() >= 0 and all_ids.max() < len(vocabulary)
    # Mocked texts hold many distinct words: some fall outside a 20-word vocabulary.
    assert np.any(all_ids == 1) and np.any(all_ids >= 2)
    assert all_labels.min() >= 0 and all_labels.max() < TEXT_DATASETS[name]["num_classes"]


def _constant_texts(self, split, decoders=None, read_config=None, shuffle_files=False):
    """Stands in for tfds's reader: three short reviews, four times each."""
    texts = tf.constant(["Good, GOOD film!", "film bad.", "Dull film"] * 4)
    labels = tf.constant([1, 0, 0] * 4, tf.int64)
    return tf.data.Dataset.from_tensor_slices({"text": texts, "label": labels})


def test_ids_follow_vocabulary_and_pad(offline_tfds):
    data_dir, mock_data = offline_tfds
    with mock_data(as_dataset_fn=_constant_texts):
        dataset, vocabulary = load_text(
            sequence_length=4, vocabulary_size=4, batch_size=12, data_dir=data_dir, shuffle=False
        )
        token_ids, labels = next(iter(dataset))
    # Lower-cased and stripped of punctuation; most frequent first; "bad", "dull" left out.
    assert vocabulary == ["", "[UNK]", "film", "good"]
    np.testing.assert_array_equal(
        np.asarray(token_ids)[:3], [[3, 3, 2, 0], [2, 1, 0, 0], [1, 2, 0, 0]]
    )
    np.testing.assert_array_equal(np.asarray(labels)[:3], [1, 0, 0])


def test_vocabulary_passed_back_is_reused(offline_tfds):
    data_dir, mock_data = offline_tfds
    with mock_data(num_examples=8):
        _, vocabulary = load_text(
            sequence_length=6, vocabulary_size=50, batch_size=8, data_dir=data_dir, shuffle=False
        )
    given = ["", "[UNK]", "zzz", *vocabulary[2:5]]
    with mock_data(num_examples=8):
        test_set, returned = load_text(
            split="test",
            sequence_length=6,
            vocabulary_size=50,
            batch_size=8,
            data_dir=data_dir,
            vocabulary=given,
        )
        token_ids, _ = next(iter(test_set))
    assert returned == given
    assert np.asarray(token_ids).max() < len(given)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"name": "sst2"}, r"`name`.*Received: name='sst2'"),
        ({"split": "unsupervised"}, r"`split`.*Received: split='unsupervised'"),
        ({"sequence_length": 0}, r"`sequence_length`.*Received: sequence_length=0"),
        ({"vocabulary_size": 2}, r"`vocabulary_size`.*Received: vocabulary_size=2"),
        ({"batch_size": 0}, r"`batch_size`.*Received: batch_size=0"),
        ({"vocabulary_size": 4, "vocabulary": ["", "[UNK]", "a", "b", "c"]}, r"`vocabulary`"),
    ],
)
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_text(**kwargs)


def test_offline_fails_fast(monkeypatch, tmp_path):
    monkeypatch.setattr(datasets_module, "_check_download_reachable", lambda timeout: False)
    with pytest.raises(DatasetUnavailableError, match="tfds build imdb_reviews") as error_info:
        load_text(data_dir=tmp_path)
    assert str(tmp_path) in str(error_info.value)


def test_dataset_trains_with_model_fit(offline_tfds):
    import keras

    data_dir, mock_data = offline_tfds
    with mock_data(num_examples=8):
        dataset, vocabulary = load_text(
            sequence_length=10, vocabulary_size=30, batch_size=8, data_dir=data_dir
        )
        model = keras.Sequential(
            [
                keras.Input((10,), dtype="int32"),
                keras.layers.Embedding(len(vocabulary), 4),
                keras.layers.GlobalAveragePooling1D(),
                keras.layers.Dense(2, activation="softmax"),
            ]
        )
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        history = model.fit(dataset, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])
