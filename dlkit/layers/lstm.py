"""Long short-term memory: the gated cell and the layer that runs it over time [notes §7.1]."""

from __future__ import annotations

import keras
from keras import ops

from dlkit.training.recurrence import run_rnn
from dlkit.validation import check_int

__all__ = ["LSTM", "LSTMCell"]


def _cell_config(layer):
    # The constructor arguments LSTMCell and LSTM share, serialized from `layer`'s attributes.
    return {
        "units": layer.units,
        "activation": keras.activations.serialize(layer.activation),
        "recurrent_activation": keras.activations.serialize(layer.recurrent_activation),
        "use_bias": layer.use_bias,
        "kernel_initializer": keras.initializers.serialize(layer.kernel_initializer),
        "recurrent_initializer": keras.initializers.serialize(layer.recurrent_initializer),
        "bias_initializer": keras.initializers.serialize(layer.bias_initializer),
        "unit_forget_bias": layer.unit_forget_bias,
    }


@keras.saving.register_keras_serializable(package="dlkit")
class LSTMCell(keras.layers.Layer):
    """One time step of an LSTM: gates decide what the cell state forgets, stores and shows.

    The cell keeps two states, the cell state `C` (the memory) and the hidden state `h` (the
    output). Sigmoid gates act as soft masks between 0 and 1: the forget gate scales down the old
    memory, the input gate scales a tanh candidate before it is added, and the output gate picks
    which part of the squashed memory becomes the new hidden state. Because the memory is updated
    by addition, information and gradients survive many steps.

    The weights have the layout of `keras.layers.LSTMCell` (gate blocks in the order input,
    forget, candidate, output), so `set_weights` moves them between the two. The notes multiply one
    matrix per gate by the concatenation [h_{t-1}, x_t]; here that matrix is split into `kernel`
    (acting on x_t) and `recurrent_kernel` (acting on h_{t-1}) and the four gates are computed in
    one product, which is the same function. `unit_forget_bias` (not in the notes) starts the
    forget bias at 1 so that the cell remembers by default [Jozefowicz et al. 2015].

    Equation:

        z = inputs · kernel + previous_hidden_state · recurrent_kernel + bias
          = [z_input | z_forget | z_candidate | z_output]            (W · [h_{t-1}, x_t] + b)
        forget_gate = recurrent_activation(z_forget)                          [notes eq. 7.1]
        input_gate = recurrent_activation(z_input)                            [notes eq. 7.2]
        candidate_cell_state = activation(z_candidate)                        [notes eq. 7.3]
        cell_state = forget_gate ⊙ previous_cell_state
                     + input_gate ⊙ candidate_cell_state                      [notes eq. 7.4]
        output_gate = recurrent_activation(z_output)                          [notes eq. 7.5]
        hidden_state = output_gate ⊙ activation(cell_state)                   [notes eq. 7.6]

        with recurrent_activation = σ and activation = tanh by default.

    Args:
        units: size of the hidden and cell states (a positive integer).
        activation: activation of the candidate and of the output. Defaults to `"tanh"`.
        recurrent_activation: activation of the gates. Defaults to `"sigmoid"`.
        use_bias: whether the gates have a bias. Defaults to `True`.
        kernel_initializer: initializer of `kernel`. Defaults to `"glorot_uniform"`.
        recurrent_initializer: initializer of `recurrent_kernel`. Defaults to `"orthogonal"`.
        bias_initializer: initializer of `bias`. Defaults to `"zeros"`.
        unit_forget_bias: whether to add 1 to the forget bias at initialisation. Defaults to `True`.
        **kwargs: other keyword arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        inputs: the input of one step, shape (B, D).
        states: `[previous_hidden_state, previous_cell_state]`, each of shape (B, units).

    Returns:
        `(hidden_state, [hidden_state, cell_state])`, each of shape (B, units), as Keras cells do;
        it also runs inside `keras.layers.RNN`.

    Example:

        >>> import numpy as np
        >>> cell = LSTMCell(4)
        >>> states = [np.zeros((2, 4), "float32"), np.zeros((2, 4), "float32")]
        >>> hidden_state, (_, cell_state) = cell(np.ones((2, 3), "float32"), states)
        >>> print(tuple(hidden_state.shape), tuple(cell_state.shape))
        (2, 4) (2, 4)

    Reference:
        Hochreiter and Schmidhuber, "Long Short-Term Memory", Neural Computation 1997;
        Jozefowicz et al., "An Empirical Exploration of Recurrent Network Architectures", ICML 2015.
    """

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_int("units", units)
        self.activation = keras.activations.get(activation)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.unit_forget_bias = unit_forget_bias
        self.state_size = [self.units, self.units]
        self.output_size = self.units

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                "Expected the last dimension of `inputs` to be known. "
                f"Received: input_shape={input_shape}"
            )
        self.kernel = self.add_weight(
            shape=(input_dim, 4 * self.units), initializer=self.kernel_initializer, name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, 4 * self.units),
            initializer=self.recurrent_initializer,
            name="recurrent_kernel",
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(4 * self.units,), initializer=self._initialize_bias, name="bias"
            )

    def _initialize_bias(self, shape, dtype=None):
        if not self.unit_forget_bias:
            return self.bias_initializer(shape, dtype=dtype)
        # Gate order input, forget, candidate, output: only the forget block starts at one.
        return ops.concatenate(
            [
                self.bias_initializer((self.units,), dtype=dtype),
                ops.ones((self.units,), dtype=dtype),
                self.bias_initializer((2 * self.units,), dtype=dtype),
            ]
        )

    def call(self, inputs, states):
        return self._recurrence(self._input_projection(inputs), states)

    def _input_projection(self, inputs):
        # The part of the gates' pre-activation that depends on the input only; `LSTM` computes
        # it for every step at once, outside the sequential loop.
        z = ops.matmul(inputs, self.kernel)  # (..., 4·units)
        return z + self.bias if self.use_bias else z

    def _recurrence(self, z_inputs, states):
        previous_hidden_state, previous_cell_state = states
        z = z_inputs + ops.matmul(previous_hidden_state, self.recurrent_kernel)  # (B, 4·units)
        z_input, z_forget, z_candidate, z_output = ops.split(z, 4, axis=-1)  # 4 × (B, units)
        forget_gate = self.recurrent_activation(z_forget)
        input_gate = self.recurrent_activation(z_input)
        candidate_cell_state = self.activation(z_candidate)
        cell_state = forget_gate * previous_cell_state + input_gate * candidate_cell_state
        output_gate = self.recurrent_activation(z_output)
        hidden_state = output_gate * self.activation(cell_state)
        return hidden_state, [hidden_state, cell_state]

    def get_config(self):
        return {**super().get_config(), **_cell_config(self)}


class _Recurrence(keras.layers.Layer):
    """The recurrent part of `LSTMCell` as a Keras cell: inputs are the precomputed
    input projections z_inputs (B, 4·units). It owns no weights: they are the cell's."""

    def __init__(self, cell, **kwargs):
        super().__init__(dtype=cell.dtype_policy, **kwargs)
        # A bound method, not the layer: the weights stay tracked once, under `LSTM.cell`.
        self._step = cell._recurrence
        self.state_size = [cell.units, cell.units]
        self.output_size = cell.units
        self.built = True

    def call(self, z_inputs, states, training=None):
        return self._step(z_inputs, states)


@keras.saving.register_keras_serializable(package="dlkit")
class LSTM(keras.layers.Layer):
    """An LSTM layer: runs `LSTMCell` along the time axis of a batch of sequences.

    The cell is applied at every step with the same weights (the unrolled network of notes §7),
    carrying the hidden and cell states from one step to the next. The input part of the gates is
    computed for all steps in one matrix product; the loop over time, which only adds the
    recurrent part, is Keras' own `keras.layers.RNN` loop: `lax.scan` on JAX, a bounded
    `tf.while_loop` on TensorFlow (so `fit` compiles it with XLA, gradient included); on PyTorch,
    which runs it step by step, a bare `keras.ops.scan` that skips the per-step Layer call
    (`dlkit.training.run_rnn` picks the loop). The time length may stay unknown until call time.

    The constructor and call arguments, the weights (`set_weights`) and the outputs match
    `keras.layers.LSTM` without dropout, including masking: at a masked step both states are
    carried over unchanged, and with `return_sequences` that step repeats the previous output
    (leading masked steps give what Keras gives on the backend: the initial hidden state on JAX,
    zeros on TensorFlow and PyTorch).

    Equation:

        for t = 1, ..., T (in reverse order if go_backwards):
            hidden_state_t, cell_state_t = LSTMCell(sequences[:, t],
                                                    hidden_state_{t-1}, cell_state_{t-1})
                                                                      [notes eqs. 7.1-7.6]
            where mask[:, t] is False: hidden_state_t, cell_state_t = hidden_state_{t-1},
                                                                      cell_state_{t-1}
            outputs[:, t] = hidden_state_t  (0 where masked, if zero_output_for_mask)

    Args:
        units: size of the hidden and cell states (a positive integer).
        activation: activation of the candidate cell state and the output, as in `LSTMCell`.
        recurrent_activation: activation of the three gates, as in `LSTMCell`.
        use_bias: whether the gates have a bias, as in `LSTMCell`.
        kernel_initializer: initializer of the input kernel, as in `LSTMCell`.
        recurrent_initializer: initializer of the recurrent kernel, as in `LSTMCell`.
        bias_initializer: initializer of the bias, as in `LSTMCell`.
        unit_forget_bias: start the forget gate's bias at 1, as in `LSTMCell`.
        return_sequences: return the output of every step instead of the last one.
            Defaults to `False`.
        return_state: also return the final hidden and cell states. Defaults to `False`.
        go_backwards: read the sequence from its end; with `return_sequences` the outputs are then
            in reversed order, as in Keras. Defaults to `False`.
        zero_output_for_mask: output zeros at masked steps instead of repeating the previous
            output, as in Keras (`keras.layers.Bidirectional` sets it). Defaults to `False`.
        **kwargs: other keyword arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        sequences: the input sequences, shape (B, T, D); T may be `None` in a functional model.
        initial_state: optional `[hidden_state, cell_state]`, each (B, units); zeros by default.
        mask: optional boolean mask (B, T), True at the steps to use (set by `keras.layers.Masking`
            or `Embedding(mask_zero=True)`).
        training: accepted for compatibility with `keras.layers.LSTM`; unused.

    Returns:
        The outputs, (B, T, units) if `return_sequences` else (B, units); with `return_state`,
        the tuple `(outputs, hidden_state, cell_state)`, the states of shape (B, units).

    Example:

        >>> import numpy as np
        >>> sequences = np.ones((2, 5, 3), "float32")
        >>> print(tuple(LSTM(4, return_sequences=True)(sequences).shape))
        (2, 5, 4)

    Reference:
        Hochreiter and Schmidhuber, "Long Short-Term Memory", Neural Computation 1997.
    """

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        zero_output_for_mask=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.cell = LSTMCell(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            unit_forget_bias=unit_forget_bias,
            dtype=self.dtype_policy,
            name="lstm_cell",
        )
        # The same attributes as the cell's, so that `_cell_config` serializes either.
        self.units = self.cell.units
        self.activation = self.cell.activation
        self.recurrent_activation = self.cell.recurrent_activation
        self.use_bias = use_bias
        self.kernel_initializer = self.cell.kernel_initializer
        self.recurrent_initializer = self.cell.recurrent_initializer
        self.bias_initializer = self.cell.bias_initializer
        self.unit_forget_bias = unit_forget_bias
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.stateful = False  # read by keras.layers.Bidirectional; no state is kept across calls
        self.supports_masking = True
        self.input_spec = keras.InputSpec(ndim=3)
        # The time loop runs over the input part of the gates computed for all steps at once:
        # Keras' own (`lax.scan` on JAX, a bounded `tf.while_loop` that XLA compiles on
        # TensorFlow), a bare scan on PyTorch (`dlkit.training.recurrence.run_rnn` picks).
        self.recurrence = keras.layers.RNN(
            _Recurrence(self.cell),
            return_sequences=return_sequences,
            return_state=True,
            go_backwards=go_backwards,
            zero_output_for_mask=zero_output_for_mask,
            dtype=self.dtype_policy,
            name="recurrence",
        )

    @property
    def zero_output_for_mask(self):
        return self.recurrence.zero_output_for_mask

    @zero_output_for_mask.setter
    def zero_output_for_mask(self, value):
        # `keras.layers.Bidirectional` sets it on the layers it wraps after building them.
        self.recurrence.zero_output_for_mask = value

    def build(self, sequences_shape, initial_state_shape=None):
        self.cell.build((sequences_shape[0], sequences_shape[-1]))
        self.recurrence.build((*sequences_shape[:-1], 4 * self.units))

    def call(self, sequences, initial_state=None, mask=None, training=None):
        if initial_state is not None:
            if not isinstance(initial_state, (list, tuple)) or len(initial_state) != 2:
                raise ValueError(
                    "Expected `initial_state` to be a list [hidden_state, cell_state]. "
                    f"Received: initial_state={initial_state!r}"
                )
            initial_state = [ops.cast(state, self.compute_dtype) for state in initial_state]
        # One matrix product for all steps, then only the recurrent part inside the loop.
        z_inputs = self.cell._input_projection(sequences)  # (B, T, 4·units)
        outputs, hidden_state, cell_state = run_rnn(
            self.recurrence, z_inputs, initial_state, mask, training
        )
        if self.return_state:
            return outputs, hidden_state, cell_state
        return outputs

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch_size, length = sequences_shape[0], sequences_shape[1]
        if self.return_sequences:
            output_shape = (batch_size, length, self.units)
        else:
            output_shape = (batch_size, self.units)
        if self.return_state:
            return output_shape, (batch_size, self.units), (batch_size, self.units)
        return output_shape

    def compute_mask(self, sequences, mask=None):
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask, None, None]
        return output_mask

    def get_config(self):
        config = {**super().get_config(), **_cell_config(self)}
        config.update(
            {
                "return_sequences": self.return_sequences,
                "return_state": self.return_state,
                "go_backwards": self.go_backwards,
                "zero_output_for_mask": self.zero_output_for_mask,
            }
        )
        return config
