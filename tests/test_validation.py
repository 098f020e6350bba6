"""The shared argument checks: accepted values, converted types and the message form."""

import keras
import numpy as np
import pytest

from dlkit import validation


@pytest.mark.parametrize("value", [3, np.int64(3)])
def test_check_int_accepts_integers_and_returns_int(value):
    result = validation.check_int("units", value)
    assert result == 3 and type(result) is int


@pytest.mark.parametrize("value", [0, -1, 2.0, True, "3", None])
def test_check_int_refuses_with_the_house_message(value):
    message = r"Expected `units` to be an integer >= 1\. Received: units="
    with pytest.raises(ValueError, match=message):
        validation.check_int("units", value)


def test_check_int_bounds_in_message():
    with pytest.raises(ValueError, match=r"integer in \[2, 4\]\. Received: k=5"):
        validation.check_int("k", 5, minimum=2, maximum=4)
    with pytest.raises(ValueError, match=r"integer <= 4\. Received: k=5"):
        validation.check_int("k", 5, minimum=None, maximum=4)
    assert validation.check_int("k", -7, minimum=None) == -7


@pytest.mark.parametrize(
    ("kwargs", "inside", "outside", "interval"),
    [
        ({"low": 0, "low_open": True}, 1e-9, 0, "> 0"),
        ({"low": 0}, 0, -1e-9, ">= 0"),
        ({"low": 0, "high": 1}, 1, 1.01, r"in \[0, 1\]"),
        ({"low": 0, "high": 1, "high_open": True}, 0, 1, r"in \[0, 1\)"),
        ({"low": 0, "high": 1, "low_open": True}, 1, 0, r"in \(0, 1\]"),
        ({"high": 2.5}, -100, 3, "<= 2.5"),
    ],
)
def test_check_number_intervals(kwargs, inside, outside, interval):
    assert validation.check_number("x", inside, **kwargs) == float(inside)
    with pytest.raises(ValueError, match=rf"Expected `x` to be a number {interval}\. Received: x="):
        validation.check_number("x", outside, **kwargs)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), True, "0.5", None])
def test_check_number_refuses_non_finite_and_non_numbers(value):
    with pytest.raises(ValueError, match="`x`"):
        validation.check_number("x", value)


def test_named_intervals():
    assert validation.check_positive("lr", np.float32(0.5)) == 0.5
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        validation.check_positive("lr", 2, maximum=1)
    assert validation.check_non_negative("w", 0) == 0.0
    assert validation.check_unit_interval("gamma", 1) == 1.0
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        validation.check_fraction("dropout", 1)


def test_check_choice_lists_the_choices():
    assert validation.check_choice("loss", "mse", ("huber", "mse")) == "mse"
    with pytest.raises(ValueError, match=r"one of \('huber', 'mse'\)\. Received: loss='l1'"):
        validation.check_choice("loss", "l1", ("huber", "mse"))


def test_check_type_raises_type_error():
    assert validation.check_type("name", "a", str, "a string") == "a"
    with pytest.raises(TypeError, match=r"Expected `name` to be a string\. Received: name=3"):
        validation.check_type("name", 3, str, "a string")


def test_check_shape():
    assert validation.check_shape("shape", 4) == (4,)
    assert validation.check_shape("shape", ()) == ()
    assert validation.check_shape("shape", np.array([2, 3])) == (2, 3)
    for bad in ((2, -1), (2.0,), "ab", None, (True,)):
        with pytest.raises(ValueError, match="`shape`"):
            validation.check_shape("shape", bad)
    with pytest.raises(ValueError, match=">= 1"):
        validation.check_shape("shape", (0,), minimum=1)


def test_check_shape_reports_the_value_as_given():
    with pytest.raises(ValueError, match=r"Received: shape=0$"):
        validation.check_shape("shape", 0, minimum=1)
    with pytest.raises(ValueError, match=r"Received: shape=\[2, 0\]$"):
        validation.check_shape("shape", [2, 0], minimum=1)


def test_check_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert validation.check_model("network", model, built=True) is model
    with pytest.raises(TypeError, match=r"`network` to be a keras\.Model"):
        validation.check_model("network", keras.layers.Dense(2))
    with pytest.raises(ValueError, match="built model"):
        validation.check_model("network", keras.Sequential([keras.layers.Dense(2)]), built=True)


def test_check_range():
    assert validation.check_range("value_range", (-1, np.float32(1))) == (-1.0, 1.0)
    for bad in ((1, 1), (2, 1), (0, float("inf")), (0,), "ab", None, (0, "x")):
        with pytest.raises(ValueError, match=r"Expected `value_range` to be a pair \(low, high\)"):
            validation.check_range("value_range", bad)
