"""Tests of the toy sequence tasks of dlkit.data.sequences, checked against NumPy."""

import numpy as np
import pytest

from dlkit.data.sequences import (
    END_ID,
    PAD_ID,
    START_ID,
    VOCABULARY,
    VOCABULARY_SIZE,
    digit_classification,
    digit_sequences,
    noisy_sine_windows,
    text_to_tokens,
    tokens_to_text,
)


def _digit_rows(tokens):
    """Each row's digits (ids minus 3, PAD dropped) as a list of NumPy arrays."""
    return [row[row != PAD_ID] - 3 for row in tokens]


def _row_set(tokens):
    return {tuple(row) for row in tokens.tolist()}


def test_vocabulary_constants():
    assert (PAD_ID, START_ID, END_ID) == (0, 1, 2)
    assert VOCABULARY_SIZE == 13 == len(VOCABULARY)
    assert VOCABULARY[:3] == ("<pad>", "<start>", "<end>")
    assert [VOCABULARY[digit + 3] for digit in range(10)] == [str(digit) for digit in range(10)]


@pytest.mark.parametrize("task", ["reverse", "sort"])
def test_digit_sequences_layout_and_targets(task):
    data = digit_sequences(task, num_train=300, num_test=40, min_length=2, max_length=7, seed=3)
    assert set(data) == {"train", "test"}
    for name, size in (("train", 300), ("test", 40)):
        split = data[name]
        assert set(split) == {"source", "decoder_inputs", "targets"}
        assert split["source"].shape == (size, 7)
        assert split["decoder_inputs"].shape == split["targets"].shape == (size, 8)
        for array in split.values():
            assert array.dtype == np.int32
            assert array.min() >= 0 and array.max() < VOCABULARY_SIZE

        source, decoder_inputs, targets = (
            split["source"],
            split["decoder_inputs"],
            split["targets"],
        )
        for index, digits in enumerate(_digit_rows(source)):
            length = len(digits)
            assert 2 <= length <= 7
            # Digits come first, then only padding.
            assert np.all(source[index, :length] >= 3) and np.all(source[index, length:] == 0)
            expected = digits[::-1] if task == "reverse" else np.sort(digits)
            np.testing.assert_array_equal(targets[index, :length] - 3, expected)
            assert targets[index, length] == END_ID
            assert np.all(targets[index, length + 1 :] == PAD_ID)
            assert decoder_inputs[index, 0] == START_ID
            # Teacher forcing: the decoder reads the target shifted right by one position.
            np.testing.assert_array_equal(
                decoder_inputs[index, 1 : length + 1], targets[index, :length]
            )
            assert np.all(decoder_inputs[index, length + 1 :] == PAD_ID)


def test_digit_sequences_lengths_are_uniform_and_all_distinct():
    data = digit_sequences(num_train=3000, num_test=500, min_length=3, max_length=6, seed=0)
    sources = np.concatenate([data["train"]["source"], data["test"]["source"]])
    lengths = (sources != PAD_ID).sum(axis=1)
    counts = np.bincount(lengths, minlength=7)[3:]
    # 875 expected per length; a multinomial standard deviation is about 26.
    assert np.all(np.abs(counts - 875) < 130), counts
    assert len(_row_set(sources)) == len(sources)
    assert not _row_set(data["train"]["source"]) & _row_set(data["test"]["source"])


def test_digit_sequences_can_use_every_sequence_of_a_short_length():
    # Length 1 has only 10 strings, fewer than its share: the excess goes to longer lengths.
    data = digit_sequences(num_train=1100, num_test=10, min_length=1, max_length=3, seed=1)
    sources = np.concatenate([data["train"]["source"], data["test"]["source"]])
    lengths = (sources != PAD_ID).sum(axis=1)
    assert np.bincount(lengths).tolist() == [0, 10, 100, 1000]
    assert len(_row_set(sources)) == 1110


def test_digit_sequences_is_seeded():
    first = digit_sequences("sort", num_train=50, num_test=10, seed=7)
    second = digit_sequences("sort", num_train=50, num_test=10, seed=7)
    other = digit_sequences("sort", num_train=50, num_test=10, seed=8)
    for name in ("train", "test"):
        for key in first[name]:
            np.testing.assert_array_equal(first[name][key], second[name][key])
    assert not np.array_equal(first["train"]["source"], other["train"]["source"])


def test_digit_sequences_long_strings_are_distinct():
    # Lengths with more than a million strings are drawn by rejection sampling.
    data = digit_sequences(num_train=200, num_test=50, min_length=12, max_length=14, seed=0)
    assert data["train"]["source"].shape == (200, 14)
    assert not _row_set(data["train"]["source"]) & _row_set(data["test"]["source"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"task": "copy"}, r"`task`.*Received: task='copy'"),
        ({"num_train": 0}, r"`num_train`.*Received: num_train=0"),
        ({"num_test": 2.5}, r"`num_test`.*Received: num_test=2.5"),
        ({"min_length": 0}, r"`min_length`.*Received: min_length=0"),
        ({"min_length": 5, "max_length": 4}, r"min_length=5, max_length=4"),
        (
            {"num_train": 5000, "num_test": 500, "min_length": 3, "max_length": 3},
            r"at most 1000 digit sequences.*need 5500.*num_train=5000",
        ),
    ],
)
def test_digit_sequences_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        digit_sequences(**kwargs)


def _is_palindrome(digits):
    return np.array_equal(digits, digits[::-1])


@pytest.mark.parametrize("num_train, num_test", [(400, 60), (301, 41)])
def test_digit_classification_labels_balance_and_splits(num_train, num_test):
    data = digit_classification(
        num_train=num_train, num_test=num_test, min_length=4, max_length=9, seed=2
    )
    for name, size in (("train", num_train), ("test", num_test)):
        tokens, labels = data[name]
        assert tokens.shape == (size, 9) and labels.shape == (size,)
        assert tokens.dtype == np.int32 and labels.dtype == np.int32
        assert labels.sum() == size // 2
        rows = _digit_rows(tokens)
        for row, label in zip(rows, labels, strict=True):
            assert 4 <= len(row) <= 9
            assert _is_palindrome(row) == bool(label)
            if not label:
                # A near-palindrome differs from its mirror image in exactly one pair.
                assert np.sum(row != row[::-1]) == 2
        # The length distribution does not reveal the label (same counts, bar an odd example).
        lengths = np.array([len(row) for row in rows])
        by_label = [np.bincount(lengths[labels == value], minlength=10) for value in (0, 1)]
        assert np.abs(by_label[0] - by_label[1]).sum() == size % 2
    train_rows, test_rows = _row_set(data["train"][0]), _row_set(data["test"][0])
    assert len(train_rows) == num_train and len(test_rows) == num_test
    assert not train_rows & test_rows


def test_digit_classification_is_seeded_and_shuffled():
    first = digit_classification(num_train=64, num_test=16, seed=5)
    second = digit_classification(num_train=64, num_test=16, seed=5)
    np.testing.assert_array_equal(first["train"][0], second["train"][0])
    np.testing.assert_array_equal(first["test"][1], second["test"][1])
    labels = first["train"][1]
    # Shuffled: the labels are not one block of ones followed by zeros.
    assert np.any(labels[:32] == 0) and np.any(labels[32:] == 1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"task": "sorted"}, r"`task`.*Received: task='sorted'"),
        ({"min_length": 1}, r"`min_length`.*>= 2.*Received: min_length=1"),
        ({"max_length": 3}, r"min_length=4, max_length=3"),
        (
            {"num_train": 300, "num_test": 10, "min_length": 4, "max_length": 4},
            r"at most 100 palindromes.*need 155",
        ),
    ],
)
def test_digit_classification_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        digit_classification(**kwargs)


def test_noisy_sine_windows_targets_follow_each_window():
    x, y = noisy_sine_windows(num_windows=50, window=8, horizon=3, noise=0.1, seed=4)
    assert x.shape == (50, 8, 1) and y.shape == (50, 3)
    assert x.dtype == np.float32 and y.dtype == np.float32
    # Windows start at consecutive times of one series: rebuild it and compare.
    series = np.concatenate([x[:, 0, 0], x[-1, 1:, 0], y[-1]])
    assert series.shape == (50 + 8 + 3 - 1,)
    for index in range(50):
        np.testing.assert_array_equal(x[index, :, 0], series[index : index + 8])
        np.testing.assert_array_equal(y[index], series[index + 8 : index + 11])


def test_noisy_sine_windows_noise_and_seed():
    clean, _ = noisy_sine_windows(num_windows=500, window=4, noise=0.0, seed=1)
    noisy, _ = noisy_sine_windows(num_windows=500, window=4, noise=0.3, seed=1)
    # Same periods and phases for a seed; the difference is the noise alone.
    assert abs(np.std(noisy - clean) - 0.3) < 0.03
    assert np.abs(clean).max() <= 1.5
    again, _ = noisy_sine_windows(num_windows=500, window=4, noise=0.3, seed=1)
    np.testing.assert_array_equal(noisy, again)
    other, _ = noisy_sine_windows(num_windows=500, window=4, noise=0.0, seed=2)
    assert not np.allclose(clean, other)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_windows": 0}, r"`num_windows`.*Received: num_windows=0"),
        ({"window": -1}, r"`window`.*Received: window=-1"),
        ({"horizon": 0}, r"`horizon`.*Received: horizon=0"),
        ({"noise": -0.1}, r"`noise`.*Received: noise=-0.1"),
    ],
)
def test_noisy_sine_windows_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        noisy_sine_windows(**kwargs)


def test_text_and_token_round_trip():
    ids = text_to_tokens("907", 5)
    assert ids.dtype == np.int32
    np.testing.assert_array_equal(ids, [12, 3, 10, 0, 0])
    assert tokens_to_text(ids) == "907"
    assert tokens_to_text(np.array([START_ID, 4, 5, END_ID, 6, PAD_ID])) == "12"
    assert tokens_to_text([PAD_ID, START_ID]) == ""
    assert tokens_to_text(text_to_tokens("", 3)) == ""
    data = digit_sequences("reverse", num_train=5, num_test=1, seed=0)
    for source, targets in zip(data["train"]["source"], data["train"]["targets"], strict=True):
        assert tokens_to_text(targets) == tokens_to_text(source)[::-1]
        np.testing.assert_array_equal(text_to_tokens(tokens_to_text(source), 10), source)


@pytest.mark.parametrize(
    "function, args, match",
    [
        (text_to_tokens, ("12a", 5), r"`text`.*Received: text='12a'"),
        (text_to_tokens, ("1234", 3), r"`length`.*Received: length=3"),
        (text_to_tokens, ("1", 0), r"`length`.*Received: length=0"),
        (tokens_to_text, ([3, 13],), r"`ids` in \[0, 13\)"),
        (tokens_to_text, ([[3, 4]],), r"`ids` to be a 1-D"),
    ],
)
def test_text_conversion_rejects_bad_input(function, args, match):
    with pytest.raises(ValueError, match=match):
        function(*args)
