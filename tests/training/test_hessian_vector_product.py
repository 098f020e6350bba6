"""`hessian_vector_product` and `compile_function` against explicit Hessians, per backend."""

import keras
import numpy as np
import pytest

from dlkit.training import compile_function, hessian_vector_product, value_and_grad


def _numpy(tensors):
    return [keras.ops.convert_to_numpy(t) for t in tensors]


def test_quadratic_form_gives_its_matrix_times_the_vector():
    # f(θ) = ½ θᵀ A θ + bᵀ θ has the Hessian (A + Aᵀ) / 2 everywhere.
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5, 5)).astype("float32")
    theta = keras.Variable(rng.standard_normal(5).astype("float32"))
    b = rng.standard_normal(5).astype("float32")
    v = rng.standard_normal(5).astype("float32")

    def f():
        return 0.5 * keras.ops.sum(theta * keras.ops.matmul(a, theta)) + keras.ops.sum(theta * b)

    (product,) = _numpy(hessian_vector_product(f, [theta], [v]))
    np.testing.assert_allclose(product, 0.5 * (a + a.T) @ v, rtol=1e-5, atol=1e-5)


def _network():
    """A two-layer tanh network and a softmax cross-entropy over it."""
    rng = np.random.default_rng(1)
    w1 = keras.Variable(rng.standard_normal((3, 4)) * 0.7, dtype="float32")
    b1 = keras.Variable(rng.standard_normal(4) * 0.1, dtype="float32")
    w2 = keras.Variable(rng.standard_normal((4, 3)) * 0.7, dtype="float32")
    x = keras.ops.convert_to_tensor(rng.standard_normal((6, 3)), "float32")
    targets = keras.ops.convert_to_tensor(rng.dirichlet(np.ones(3), 6), "float32")

    def loss(x=x):
        logits = keras.ops.matmul(keras.ops.tanh(keras.ops.matmul(x, w1) + b1), w2)
        return -keras.ops.mean(keras.ops.sum(targets * keras.ops.log_softmax(logits), axis=-1))

    return [w1, b1, w2], loss


def _explicit_hessian(loss, variables, epsilon=3e-3):
    """H built column by column: central differences of the autodiff gradient. In float32
    (JAX's default has no float64), exact to about 1e-4 here."""
    values = [v.numpy().astype("float64") for v in variables]
    flat = np.concatenate([value.ravel() for value in values])

    def gradient_at(point):
        start = 0
        for variable, value in zip(variables, values):
            variable.assign(
                point[start : start + value.size].reshape(value.shape).astype("float32")
            )
            start += value.size
        _, gradients, _ = value_and_grad(loss, variables)
        return np.concatenate([g.ravel() for g in _numpy(gradients)])

    columns = []
    for j in range(flat.size):
        step = np.zeros_like(flat)
        step[j] = epsilon
        columns.append((gradient_at(flat + step) - gradient_at(flat - step)) / (2 * epsilon))
    gradient_at(flat)  # the variables back at θ
    return np.stack(columns, axis=1)


def test_network_product_equals_the_explicit_hessian_times_the_vector():
    variables, loss = _network()
    hessian = _explicit_hessian(loss, variables)
    np.testing.assert_allclose(hessian, hessian.T, atol=5e-4)  # a Hessian, not noise
    v = np.random.default_rng(2).standard_normal(hessian.shape[0]).astype("float32")
    shapes = [tuple(variable.shape) for variable in variables]
    pieces = np.split(v, np.cumsum([int(np.prod(s)) for s in shapes])[:-1])
    vector = [piece.reshape(shape) for piece, shape in zip(pieces, shapes)]
    products = _numpy(hessian_vector_product(loss, variables, vector))
    expected = hessian @ v
    assert np.abs(expected).max() > 0.5  # a product far from zero
    np.testing.assert_allclose(
        np.concatenate([p.ravel() for p in products]), expected, rtol=1e-3, atol=2e-3
    )
    # The flat form gives the same vector.
    flat = keras.ops.convert_to_numpy(hessian_vector_product(loss, variables, v))
    np.testing.assert_allclose(flat, expected, rtol=1e-3, atol=2e-3)


def test_compiled_product_equals_the_eager_one_and_reads_new_values():
    variables, loss = _network()
    size = sum(int(np.prod(x.shape)) for x in variables)
    v = np.random.default_rng(3).standard_normal(size).astype("float32")
    compiled = compile_function(
        lambda vector: hessian_vector_product(loss, variables, vector), variables
    )
    eager = keras.ops.convert_to_numpy(hessian_vector_product(loss, variables, v))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(compiled(v)), eager, rtol=1e-5, atol=1e-6)
    variables[0].assign(variables[0].numpy() * 0.5)
    moved = keras.ops.convert_to_numpy(hessian_vector_product(loss, variables, v))
    assert np.abs(moved - eager).max() > 1e-3  # the Hessian depends on the weights
    np.testing.assert_allclose(keras.ops.convert_to_numpy(compiled(v)), moved, rtol=1e-5, atol=1e-6)
    assert compiled.num_traces <= 1


def test_compiled_gradient_reads_variables_it_does_not_differentiate():
    scale = keras.Variable(2.0)
    w = keras.Variable(np.array([1.0, 3.0], "float32"))
    compiled = compile_function(
        lambda: value_and_grad(lambda: scale * keras.ops.sum(w * w), [w])[1][0], [w, scale]
    )
    np.testing.assert_allclose(keras.ops.convert_to_numpy(compiled()), [4.0, 12.0])
    scale.assign(-1.0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(compiled()), [-2.0, -6.0])


def test_unreached_variable_gets_zeros():
    used, unused = keras.Variable(np.array([2.0], "float32")), keras.Variable(np.ones(2, "float32"))
    products = _numpy(
        hessian_vector_product(lambda: keras.ops.sum(used**3), [used, unused], [[1.0], [1.0, 1.0]])
    )
    np.testing.assert_allclose(products[0], [12.0])
    np.testing.assert_array_equal(products[1], [0.0, 0.0])


def test_mismatched_vectors_are_rejected():
    w = keras.Variable(np.ones(3, "float32"))
    with pytest.raises(ValueError, match="total size 3"):
        hessian_vector_product(lambda: keras.ops.sum(w**2), [w], np.ones(4, "float32"))
    with pytest.raises(ValueError, match=r"vector\[0\]"):
        hessian_vector_product(lambda: keras.ops.sum(w**2), [w], [np.ones(2, "float32")])
    with pytest.raises(ValueError, match="scalar"):
        hessian_vector_product(lambda: w**2, [w], [np.ones(3, "float32")])
    with pytest.raises(TypeError, match=r"variables\[0\]"):
        compile_function(lambda: 0.0, [np.ones(3)])
