"""Datasets: embedded digits, tensorflow-datasets loaders and synthetic shapes.

- ``digits``: scikit-learn's 1,797 real 8×8 digits, shipped inside scikit-learn; the default
  dataset, needing no download.
- ``load``: tensorflow-datasets images (MNIST, Fashion-MNIST, CIFAR, horse2zebra) as batched
  ``tf.data`` pipelines; raises ``DatasetUnavailableError`` within seconds when the data is not
  prepared locally and the machine is offline.
- ``shapes``: synthetic circles, squares and triangles with masks and boxes, for segmentation
  and detection (notes §4.12-4.13).

TensorFlow and tensorflow-datasets are imported only when a ``tf.data`` pipeline is requested,
so ``import dlkit.data`` stays cheap.
"""

from dlkit.data.datasets import DATASETS, DatasetUnavailableError, load
from dlkit.data.digits import DIGITS_SHAPE, NUM_DIGIT_CLASSES, digits
from dlkit.data.shapes import SHAPE_CLASSES, shapes

__all__ = [
    "DATASETS",
    "DIGITS_SHAPE",
    "NUM_DIGIT_CLASSES",
    "SHAPE_CLASSES",
    "DatasetUnavailableError",
    "digits",
    "load",
    "shapes",
]
