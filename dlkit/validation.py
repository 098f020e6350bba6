"""Argument checks shared by every dlkit package, with one message form.

Each public entry point (a layer, a model, an agent, a data function, a recipe) checks its
arguments once, with these functions, and says what it expected and what it received:

    ValueError: Expected `units` to be an integer >= 1. Received: units=0

Booleans are refused wherever a number is expected (``True`` is an ``int`` in Python, and
``units=True`` is always a mistake). NumPy scalars are accepted as the numbers they hold.
Each check returns the value converted to a plain Python ``int``, ``float`` or ``tuple``, so
configurations built from it serialise to JSON.

This module imports only NumPy and Keras, so that every layer of dlkit can use it.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable

__all__ = [
    "check_choice",
    "check_fraction",
    "check_int",
    "check_model",
    "check_non_negative",
    "check_number",
    "check_positive",
    "check_range",
    "check_shape",
    "check_type",
    "check_unit_interval",
]


def _received(name: str, value: object) -> str:
    return f"Received: {name}={value!r}"


def check_int(name: str, value: object, minimum: int | None = 1, maximum: int | None = None) -> int:
    """Returns `value` as an int in [`minimum`, `maximum`], or raises a ValueError naming `name`.

    Either bound may be None (unbounded). The default asks for an integer >= 1.

    >>> check_int("units", 4)
    4
    >>> check_int("units", 0)
    Traceback (most recent call last):
    ...
    ValueError: Expected `units` to be an integer >= 1. Received: units=0
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or (minimum is not None and value < minimum)
        or (maximum is not None and value > maximum)
    ):
        if minimum is not None and maximum is not None:
            bound = f" in [{minimum}, {maximum}]"
        elif minimum is not None:
            bound = f" >= {minimum}"
        elif maximum is not None:
            bound = f" <= {maximum}"
        else:
            bound = ""
        raise ValueError(f"Expected `{name}` to be an integer{bound}. {_received(name, value)}")
    return int(value)


def check_number(
    name: str,
    value: object,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Returns `value` as a finite float between `low` and `high`, or raises a ValueError.

    A bound of None is no bound; `low_open` and `high_open` exclude the bound itself. The
    message writes the interval in the usual notation: ``(0, 1]`` for ``low=0, high=1,
    low_open=True``, ``> 0`` for ``low=0, low_open=True`` alone.

    >>> check_number("gamma", 0.99, 0, 1)
    0.99
    >>> check_number("gamma", 1.5, 0, 1)
    Traceback (most recent call last):
    ...
    ValueError: Expected `gamma` to be a number in [0, 1]. Received: gamma=1.5
    """
    valid = (
        not isinstance(value, bool)
        and isinstance(value, numbers.Real)
        and value == value  # NaN compares unequal to itself.
        and abs(float(value)) != float("inf")
    )
    if valid and low is not None:
        valid = value > low if low_open else value >= low
    if valid and high is not None:
        valid = value < high if high_open else value <= high
    if not valid:
        raise ValueError(
            f"Expected `{name}` to be a number{_interval(low, high, low_open, high_open)}. "
            f"{_received(name, value)}"
        )
    return float(value)


def _interval(low, high, low_open, high_open) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high}"
    return ""


def check_positive(name: str, value: object, maximum: float | None = None) -> float:
    """`value` as a float > 0 (and <= `maximum` when given), or a ValueError naming `name`."""
    return check_number(name, value, 0, maximum, low_open=True)


def check_non_negative(name: str, value: object) -> float:
    """`value` as a float >= 0, or a ValueError naming `name`."""
    return check_number(name, value, 0)


def check_unit_interval(name: str, value: object) -> float:
    """`value` as a float in [0, 1] (a probability, a discount, a weight), or a ValueError."""
    return check_number(name, value, 0, 1)


def check_fraction(name: str, value: object) -> float:
    """`value` as a float in [0, 1) (a dropout rate, a smoothing weight), or a ValueError."""
    return check_number(name, value, 0, 1, high_open=True)


def check_range(name: str, value: object) -> tuple[float, float]:
    """`value` as a pair (low, high) of finite floats with low < high, or a ValueError.

    >>> check_range("value_range", (-1, 1))
    (-1.0, 1.0)
    """
    try:
        low, high = (float(bound) for bound in value)
    except (TypeError, ValueError):
        low = high = float("nan")
    if not (abs(low) < float("inf") and abs(high) < float("inf") and low < high):
        raise ValueError(
            f"Expected `{name}` to be a pair (low, high) of finite numbers with low < high. "
            f"{_received(name, value)}"
        )
    return low, high


def check_choice(name: str, value: object, choices: Iterable) -> object:
    """Returns `value` if it is one of `choices`, or raises a ValueError listing them.

    >>> check_choice("loss", "huber", ("huber", "mse"))
    'huber'
    """
    choices = tuple(choices)
    if isinstance(value, bool) or value not in choices:
        raise ValueError(f"Expected `{name}` to be one of {choices}. {_received(name, value)}")
    return value


def check_type(name: str, value: object, types: type | tuple[type, ...], description: str):
    """Returns `value` if it is an instance of `types`, or raises a TypeError naming `name`.

    `description` says in words what was expected ("a keras.Model", "a string").
    """
    if not isinstance(value, types):
        raise TypeError(f"Expected `{name}` to be {description}. {_received(name, value)}")
    return value


def check_shape(name: str, value: object, minimum: int = 0) -> tuple[int, ...]:
    """`value` as a tuple of integers >= `minimum`, or a ValueError naming `name`.

    A single integer is a one-axis shape; ``()`` is the shape of a scalar.

    >>> check_shape("observation_shape", [4])
    (4,)
    """
    one_axis = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    try:
        items = (value,) if one_axis else tuple(value)  # the message shows `value` as given
    except TypeError:
        items = None
    if items is None or any(
        isinstance(item, bool) or not isinstance(item, numbers.Integral) or item < minimum
        for item in items
    ):
        raise ValueError(
            f"Expected `{name}` to be a tuple of integers >= {minimum}. {_received(name, value)}"
        )
    return tuple(int(item) for item in items)


def check_model(name: str, value: object, built: bool = False):
    """Returns `value` if it is a `keras.Model`, else raises a TypeError naming `name`.

    With `built`, the model must also know its input shape (a functional or Sequential model
    that starts with `keras.Input`); otherwise a ValueError says so.
    """
    import keras

    check_type(name, value, keras.Model, "a keras.Model")
    if built and (not value.built or not value.inputs):
        raise ValueError(
            f"Expected `{name}` to be a built model with a known input shape (a functional or "
            f"Sequential model starting with keras.Input). Received: {name}={value.name!r}"
        )
    return value
