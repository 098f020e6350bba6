"""Sequence models: LSTM and transformer classifiers of token ids, an LSTM forecaster [notes §7].

Each builder returns a functional `keras.Model` (uncompiled), so the models train with plain
`compile`/`fit` and save to `.keras` files on every backend. Token id 0 is padding: the
classifiers carry a Keras mask from their embedding, so padded steps change neither the LSTM
states nor the transformer's attention and pooling.
"""

from __future__ import annotations

import keras

from dlkit.layers.embedding import TokenAndPositionEmbedding
from dlkit.layers.lstm import LSTM
from dlkit.layers.transformer import TransformerEncoder
from dlkit.validation import check_fraction, check_int

__all__ = ["build_lstm_classifier", "build_lstm_forecaster", "build_transformer_classifier"]


def _stacked_lstms(x, units: int, num_layers: int, dropout: float = 0.0):
    # Every layer but the last returns its whole output sequence, which the next one reads.
    for index in range(num_layers):
        last = index == num_layers - 1
        x = LSTM(units, return_sequences=not last, name=f"lstm_{index}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout_{index}")(x)
    return x


def build_lstm_classifier(
    vocabulary_size: int,
    num_classes: int,
    embedding_dim: int = 32,
    units: int = 64,
    num_layers: int = 1,
    dropout: float = 0.0,
) -> keras.Model:
    """An LSTM classifier of token sequences: embedding, stacked LSTMs, logits of the last state.

    The token ids are embedded with `Embedding(mask_zero=True)`, so id 0 is padding: the mask
    makes every LSTM carry its hidden and cell states unchanged over padded steps, and the final
    hidden state, the summary of the whole unpadded sequence, is mapped to class logits. Padding
    at the end of a sequence therefore leaves the logits unchanged. With `num_layers > 1` the
    LSTMs are stacked, each reading the hidden-state sequence of the one below.

    Equation (one LSTM layer; stacking feeds hidden_state_{1..T} of layer l to layer l + 1):

        x_t = Embedding(token_ids[:, t])                                  (B, embedding_dim)
        hidden_state_t, cell_state_t = LSTMCell(x_t, hidden_state_{t-1}, cell_state_{t-1})
                                                                     [notes §7.1, eqs. 7.1-7.6]
            (states carried over unchanged where token_ids[:, t] == 0)
        logits = Dropout(hidden_state_T) · W + b                          (B, num_classes)

    Args:
        vocabulary_size: number of token ids, padding (id 0) included (an integer >= 2).
        num_classes: number of classes (an integer >= 2); the model outputs one logit each.
        embedding_dim: width of the token embeddings. Defaults to 32.
        units: size of the hidden and cell states of every LSTM layer. Defaults to 64.
        num_layers: number of stacked LSTM layers. Defaults to 1.
        dropout: dropout rate after every LSTM layer, in [0, 1). Defaults to 0.

    Call arguments:
        token_ids: int (B, T), padded with 0 at the end; T may differ between calls.

    Returns:
        An uncompiled `keras.Model` mapping token ids (B, T) to logits (B, num_classes).

    Example:

        >>> import numpy as np
        >>> model = build_lstm_classifier(vocabulary_size=13, num_classes=2, units=8)
        >>> print(tuple(model(np.array([[3, 4, 5, 0], [6, 0, 0, 0]])).shape))
        (2, 2)

    Reference:
        Hochreiter and Schmidhuber, "Long Short-Term Memory", Neural Computation 1997.
    """
    vocabulary_size = check_int("vocabulary_size", vocabulary_size, 2)
    num_classes = check_int("num_classes", num_classes, 2)
    embedding_dim = check_int("embedding_dim", embedding_dim)
    units = check_int("units", units)
    num_layers = check_int("num_layers", num_layers)
    dropout = check_fraction("dropout", dropout)

    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(vocabulary_size, embedding_dim, mask_zero=True, name="embedding")(
        token_ids
    )  # (B, T, embedding_dim)
    x = _stacked_lstms(x, units, num_layers, dropout)  # (B, units)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(token_ids, logits, name="lstm_classifier")


def build_transformer_classifier(
    vocabulary_size: int,
    num_classes: int,
    max_length: int,
    model_dim: int = 32,
    num_heads: int = 2,
    intermediate_dim: int = 64,
    num_layers: int = 1,
    dropout: float = 0.0,
) -> keras.Model:
    """A transformer-encoder classifier of token sequences: attend, average the unpadded, classify.

    Tokens are embedded with their sinusoidal position (`TokenAndPositionEmbedding`, padding
    id 0 masked), transformed by `num_layers` encoder blocks in which every position attends to
    every unpadded position at once (no recurrence), then averaged over the unpadded positions
    (a masked mean) and mapped to class logits. Padding therefore changes neither the attention
    nor the average, and the logits do not depend on how much padding follows a sequence.

    Equation:

        x = Embedding(token_ids) · √model_dim + PositionalEncoding         (B, T, model_dim)
        x = TransformerEncoder(x, padding_mask = token_ids ≠ 0)   × num_layers   [notes §7.3]
        pooled = Σ_t mask_t x_t / Σ_t mask_t,  mask_t = [token_ids[:, t] ≠ 0]    (B, model_dim)
        logits = Dropout(pooled) · W + b                                  (B, num_classes)

    Args:
        vocabulary_size: number of token ids, padding (id 0) included (an integer >= 2).
        num_classes: number of classes (an integer >= 2); the model outputs one logit each.
        max_length: the longest sequence (T) the positional encoding accepts (an integer >= 1).
        model_dim: width of the embeddings and of the encoder blocks; `num_heads` must divide it.
            Defaults to 32.
        num_heads: attention heads per block. Defaults to 2.
        intermediate_dim: hidden width of each block's feed-forward network. Defaults to 64.
        num_layers: number of encoder blocks. Defaults to 1.
        dropout: dropout rate inside the blocks and before the logits, in [0, 1). Defaults to 0.

    Call arguments:
        token_ids: int (B, T) with T <= max_length, padded with 0; every row needs one token.

    Returns:
        An uncompiled `keras.Model` mapping token ids (B, T) to logits (B, num_classes).

    Example:

        >>> import numpy as np
        >>> model = build_transformer_classifier(13, num_classes=2, max_length=8, model_dim=8)
        >>> print(tuple(model(np.array([[3, 4, 5, 0], [6, 0, 0, 0]])).shape))
        (2, 2)

    Reference:
        Vaswani et al., "Attention Is All You Need", NeurIPS 2017
        (https://arxiv.org/abs/1706.03762).
    """
    vocabulary_size = check_int("vocabulary_size", vocabulary_size, 2)
    num_classes = check_int("num_classes", num_classes, 2)
    max_length = check_int("max_length", max_length)
    model_dim = check_int("model_dim", model_dim)
    num_heads = check_int("num_heads", num_heads)
    intermediate_dim = check_int("intermediate_dim", intermediate_dim)
    num_layers = check_int("num_layers", num_layers)
    dropout = check_fraction("dropout", dropout)
    if model_dim % num_heads:
        raise ValueError(
            "Expected `num_heads` to divide `model_dim`. "
            f"Received: num_heads={num_heads}, model_dim={model_dim}"
        )

    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    x = TokenAndPositionEmbedding(
        vocabulary_size, max_length, model_dim, mask_zero=True, name="embedding"
    )(token_ids)  # (B, T, model_dim)
    for index in range(num_layers):
        x = TransformerEncoder(intermediate_dim, num_heads, dropout, name=f"encoder_{index}")(x)
    # GlobalAveragePooling1D reads the padding mask: the mean over unpadded positions only.
    x = keras.layers.GlobalAveragePooling1D(name="masked_mean")(x)  # (B, model_dim)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(token_ids, logits, name="transformer_classifier")


def build_lstm_forecaster(
    window: int, num_features: int = 1, horizon: int = 1, units: int = 32, num_layers: int = 1
) -> keras.Model:
    """An LSTM forecaster: reads a window of a time series, predicts the next `horizon` values.

    Sequence-to-one regression: stacked LSTMs run over the `window` past steps and a linear layer
    maps the final hidden state to the `horizon` next values (of the first feature, say, or of a
    univariate series); train it with a squared-error loss.

    Equation (one LSTM layer):

        hidden_state_t, cell_state_t = LSTMCell(x_t, hidden_state_{t-1}, cell_state_{t-1})
                                           t = 1, ..., window   [notes §7.1, eqs. 7.1-7.6]
        forecast = hidden_state_window · W + b                              (B, horizon)

    Args:
        window: number of past steps the model reads (an integer >= 1).
        num_features: values per step (an integer >= 1). Defaults to 1.
        horizon: number of future values predicted (an integer >= 1). Defaults to 1.
        units: size of the hidden and cell states of every LSTM layer. Defaults to 32.
        num_layers: number of stacked LSTM layers. Defaults to 1.

    Call arguments:
        windows: float (B, window, num_features).

    Returns:
        An uncompiled `keras.Model` mapping windows (B, window, num_features) to forecasts
        (B, horizon).

    Example:

        >>> import numpy as np
        >>> model = build_lstm_forecaster(window=5, horizon=2, units=4)
        >>> print(tuple(model(np.zeros((3, 5, 1), "float32")).shape))
        (3, 2)

    Reference:
        Hochreiter and Schmidhuber, "Long Short-Term Memory", Neural Computation 1997.
    """
    window = check_int("window", window)
    num_features = check_int("num_features", num_features)
    horizon = check_int("horizon", horizon)
    units = check_int("units", units)
    num_layers = check_int("num_layers", num_layers)

    windows = keras.Input((window, num_features), name="windows")
    x = _stacked_lstms(windows, units, num_layers)  # (B, units)
    forecast = keras.layers.Dense(horizon, name="forecast")(x)
    return keras.Model(windows, forecast, name="lstm_forecaster")
