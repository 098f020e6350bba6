"""The course's layers, one concept per module, written with ``keras.ops`` only.

Every layer is registered for ``.keras`` serialisation under the ``dlkit`` package and, where
Keras has a counterpart, takes the same constructor and call arguments so the two can be swapped.

- ``conv``: ``DilatedConv2D``, ``TransposedConv2D``, ``conv_output_size``, ``receptive_field``,
  ``conv_as_matrix`` [notes ch. 4].
- ``gaussian_sampling``: ``GaussianSampling``, the reparameterisation trick [notes §5.2].
- ``film``: ``FiLM`` and ``LabelChannels`` for conditional generation [notes §6.3].
- ``feature_pyramid``: ``FeaturePyramid``, a top-down pathway with lateral connections for
  multi-scale detection [notes §4.13.2].
- ``minibatch_stddev``: ``MinibatchStdDev``, a batch-diversity feature for GAN discriminators.
- ``lstm``: ``LSTMCell`` and ``LSTM`` [notes §7.1].
- ``attention``: score functions and ``MultiHeadAttention`` [notes §7.2].
- ``positional_encoding``, ``embedding`` and ``transformer``: ``SinusoidalPositionalEncoding``,
  ``TokenAndPositionEmbedding``, ``check_token_ids``, ``TransformerEncoder``,
  ``TransformerDecoder`` [notes §7.3].
- ``graph_conv``: ``GraphConv``, ``ChebConv``, ``normalize_adjacency``: spectral graph
  convolutions [notes ch. 8].
- ``noisy_dense`` and ``q_heads``: ``NoisyDense``, ``DuelingHead``, ``CategoricalQHead`` for
  value-based agents [notes ch. 9].
"""

from dlkit.layers.attention import (
    AdditiveScore,
    MultiHeadAttention,
    attention,
    masked_softmax,
    scaled_dot_product_scores,
)
from dlkit.layers.conv import (
    DilatedConv2D,
    TransposedConv2D,
    conv_as_matrix,
    conv_output_size,
    receptive_field,
)
from dlkit.layers.embedding import TokenAndPositionEmbedding, check_token_ids
from dlkit.layers.feature_pyramid import FeaturePyramid
from dlkit.layers.film import FiLM, LabelChannels
from dlkit.layers.gaussian_sampling import GaussianSampling
from dlkit.layers.graph_conv import ChebConv, GraphConv, normalize_adjacency
from dlkit.layers.lstm import LSTM, LSTMCell
from dlkit.layers.minibatch_stddev import MinibatchStdDev
from dlkit.layers.noisy_dense import NoisyDense
from dlkit.layers.positional_encoding import SinusoidalPositionalEncoding
from dlkit.layers.q_heads import CategoricalQHead, DuelingHead
from dlkit.layers.transformer import TransformerDecoder, TransformerEncoder

__all__ = [
    "LSTM",
    "AdditiveScore",
    "CategoricalQHead",
    "ChebConv",
    "DilatedConv2D",
    "DuelingHead",
    "FeaturePyramid",
    "FiLM",
    "GaussianSampling",
    "GraphConv",
    "LSTMCell",
    "LabelChannels",
    "MinibatchStdDev",
    "MultiHeadAttention",
    "NoisyDense",
    "SinusoidalPositionalEncoding",
    "TokenAndPositionEmbedding",
    "TransformerDecoder",
    "TransformerEncoder",
    "TransposedConv2D",
    "attention",
    "check_token_ids",
    "conv_as_matrix",
    "conv_output_size",
    "masked_softmax",
    "normalize_adjacency",
    "receptive_field",
    "scaled_dot_product_scores",
]
