"""tensorflow-datasets text classification as batched ``(token ids, label)`` pipelines.

Reviews (IMDB) and news descriptions (AG News) are split into words by a
``keras.layers.TextVectorization`` layer whose vocabulary is learned on the training split, then
padded or cut to a fixed length: the input of an embedding followed by an LSTM (notes §7.1) or
a Transformer encoder (§7.3). Offline machines fail fast with ``DatasetUnavailableError``, as
with ``dlkit.data.load``.
"""

from __future__ import annotations

import os

from dlkit.data import datasets as _datasets
from dlkit.data.datasets import DatasetUnavailableError
from dlkit.validation import check_choice, check_int

# Each entry: the tfds name, the number of classes and the labelled splits. as_supervised gives
# (text, label): the review for imdb_reviews, the description (not the title) for ag_news_subset.
TEXT_DATASETS = {
    "imdb_reviews": {"tfds_name": "imdb_reviews", "num_classes": 2, "splits": ("train", "test")},
    "ag_news_subset": {
        "tfds_name": "ag_news_subset",
        "num_classes": 4,
        "splits": ("train", "test"),
    },
}

# The vocabulary is learned from at most this many training texts: enough for the frequent
# words, in seconds rather than minutes.
_MAX_ADAPT_EXAMPLES = 20_000
_MAX_SHUFFLE_BUFFER = 10_000
_CONNECT_TIMEOUT = 5.0
# TextVectorization reserves id 0 for padding and id 1 for out-of-vocabulary words.
_NUM_RESERVED_IDS = 2


def _prepared_builder(name: str, data_dir: str):
    """The tfds builder of ``name``, downloading it if needed and the network answers."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(TEXT_DATASETS[name]["tfds_name"], data_dir=data_dir)
    if not builder.is_prepared():
        # Looked up on the module, so that tests can replace the network check.
        if not _datasets._check_download_reachable(_CONNECT_TIMEOUT):
            host, port = _datasets._DOWNLOAD_HOST
            raise DatasetUnavailableError(
                _datasets._unavailable_message(
                    name,
                    data_dir,
                    os.fspath(builder.data_path),
                    f"the download host {host}:{port} did not answer within "
                    f"{_CONNECT_TIMEOUT} s (this machine seems to be offline)",
                    table=TEXT_DATASETS,
                    loader="dlkit.data.load_text",
                    offline_alternative="dlkit.data.digit_sequences and digit_classification "
                    "need no download: they generate digit-sequence tasks.",
                )
            )
        builder.download_and_prepare()
    return builder


def load_text(
    name: str = "imdb_reviews",
    split: str = "train",
    sequence_length: int = 200,
    vocabulary_size: int = 20000,
    batch_size: int = 32,
    data_dir: str | os.PathLike | None = None,
    shuffle: bool = True,
    seed: int = 0,
    vocabulary: list[str] | None = None,
):
    """Loads a tensorflow-datasets text-classification dataset as batches of token ids.

    Texts are lower-cased, stripped of punctuation and split on whitespace by
    ``keras.layers.TextVectorization``; each word becomes its index in a vocabulary of the
    ``vocabulary_size`` most frequent training words, and the ids are padded with 0 or cut to
    ``sequence_length``. Id 0 is padding and id 1 an out-of-vocabulary word. The vocabulary is
    learned from the first 20,000 texts of the training split unless ``vocabulary`` is given:
    pass the vocabulary returned for the training split when loading the test split, so that
    both use the same ids. The result feeds ``model.fit`` on every Keras backend.

    Args:
        name: one of ``TEXT_DATASETS``: ``"imdb_reviews"`` (movie reviews, 2 classes: negative,
            positive) or ``"ag_news_subset"`` (news descriptions, 4 topics).
        split: ``"train"`` or ``"test"``, or a tfds split expression over them such as
            ``"train[:10%]"``.
        sequence_length: number of token ids per text, at least 1.
        vocabulary_size: most token ids, padding and out-of-vocabulary included; at least 3.
        batch_size: number of texts per batch; the last batch may be smaller.
        data_dir: tfds data directory; defaults to the ``TFDS_DATA_DIR`` environment variable,
            else ``~/tensorflow_datasets``.
        shuffle: whether to shuffle files and texts (reshuffled each epoch).
        seed: seed of the shuffle.
        vocabulary: a vocabulary returned by an earlier call (at most ``vocabulary_size``
            words, starting with ``""`` and ``"[UNK]"``); None learns one from the training
            split.

    Returns:
        ``(dataset, vocabulary)``: a ``tf.data.Dataset`` of ``(token_ids, labels)``, token_ids
        int32 of shape ``(batch, sequence_length)`` in ``[0, len(vocabulary))`` and labels int32
        of shape ``(batch,)``; and the vocabulary as a list of strings, whose index is the id.

    Raises:
        ValueError: for an unknown ``name`` or ``split`` or an invalid argument.
        DatasetUnavailableError: if the dataset is not prepared in ``data_dir`` and the download
            host cannot be reached.

    Example:

    >>> print(TEXT_DATASETS["ag_news_subset"]["num_classes"])
    4
    >>> train, vocabulary = load_text("imdb_reviews", "train")  # doctest: +SKIP
    >>> test, _ = load_text("imdb_reviews", "test", vocabulary=vocabulary)  # doctest: +SKIP
    >>> token_ids, labels = next(iter(train))  # doctest: +SKIP
    >>> print(token_ids.shape, labels.shape)  # doctest: +SKIP
    (32, 200) (32,)
    """
    check_choice("name", name, TEXT_DATASETS)
    _datasets._check_split(name, split, TEXT_DATASETS)
    check_int("sequence_length", sequence_length)
    # Padding, out-of-vocabulary and at least one word.
    check_int("vocabulary_size", vocabulary_size, _NUM_RESERVED_IDS + 1)
    check_int("batch_size", batch_size)
    if vocabulary is not None:
        vocabulary = list(vocabulary)
        if not all(isinstance(word, str) for word in vocabulary) or not (
            _NUM_RESERVED_IDS < len(vocabulary) <= vocabulary_size
        ):
            raise ValueError(
                "Expected `vocabulary` to be None or a list of 3 to `vocabulary_size` = "
                f"{vocabulary_size} strings. Received: vocabulary of {len(vocabulary)} items "
                f"starting {vocabulary[:5]!r}"
            )

    # Imported here so that `import dlkit.data` stays cheap.
    import keras
    import tensorflow as tf
    import tensorflow_datasets as tfds

    if data_dir is None:
        data_dir = os.environ.get("TFDS_DATA_DIR") or os.path.join(
            os.path.expanduser("~"), "tensorflow_datasets"
        )
    builder = _prepared_builder(name, os.fspath(data_dir))

    vectorizer = keras.layers.TextVectorization(
        max_tokens=vocabulary_size,
        standardize="lower_and_strip_punctuation",
        output_mode="int",
        output_sequence_length=sequence_length,
        vocabulary=vocabulary,
    )
    if vocabulary is None:
        # Unshuffled files, so that the vocabulary does not depend on `seed`.
        texts = builder.as_dataset(split="train", as_supervised=True, shuffle_files=False)
        texts = texts.take(_MAX_ADAPT_EXAMPLES).map(lambda text, label: text)
        vectorizer.adapt(texts.batch(256))
    vocabulary = [str(word) for word in vectorizer.get_vocabulary()]

    dataset = builder.as_dataset(
        split=split,
        as_supervised=True,
        shuffle_files=shuffle,
        read_config=tfds.ReadConfig(shuffle_seed=seed),
    )
    if shuffle:
        dataset = dataset.shuffle(
            max(batch_size, _MAX_SHUFFLE_BUFFER), seed=seed, reshuffle_each_iteration=True
        )

    def to_model_input(texts, labels):
        token_ids = tf.cast(vectorizer(texts), tf.int32)  # (B, sequence_length)
        return token_ids, tf.cast(labels, tf.int32)

    # Batched before vectorising: one call per batch rather than per text.
    dataset = dataset.batch(batch_size).map(to_model_input, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE), vocabulary
