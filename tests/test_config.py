from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from dlkit.config import ConfigError, config_fields, format_help, parse_overrides


@dataclass
class Config:
    epochs: int = 3
    """Passes over the data."""
    rate: float = 0.1
    """Step size."""
    name: str = "run"
    """Run name."""
    augment: bool = False
    """Whether to augment."""
    sizes: tuple[int, ...] = (4, 8)
    """Layer sizes."""
    mode: Literal["fast", "exact"] = "fast"
    """Algorithm variant."""
    limit: int | None = None
    """Optional cap."""

    def __post_init__(self):
        if self.epochs < 1:
            raise ValueError(f"Expected epochs >= 1. Received: epochs={self.epochs}")


def test_fields_carry_types_defaults_and_docstrings():
    fields = {info.name: info for info in config_fields(Config)}
    assert fields["epochs"].type is int and fields["epochs"].default == 3
    assert fields["rate"].doc == "Step size."
    assert list(fields) == ["epochs", "rate", "name", "augment", "sizes", "mode", "limit"]


def test_overrides_are_converted_to_the_field_types():
    config = parse_overrides(
        Config,
        [
            "--epochs",
            "5",
            "--rate=0.5",
            "--augment",
            "yes",
            "--sizes",
            "1,2,3",
            "--mode",
            "exact",
            "--limit",
            "7",
            "--name",
            "x",
        ],
    )
    assert config == Config(5, 0.5, "x", True, (1, 2, 3), "exact", 7)
    assert parse_overrides(Config, ["--limit", "none"]).limit is None
    assert parse_overrides(Config, []) == Config()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--epochs", "abc"], "invalid value for --epochs: 'abc' (expected int)"),
        (["--no_such", "1"], "unknown option --no_such"),
        (["--epochs"], "option --epochs needs a value"),
        (["--augment", "maybe"], "expected true or false"),
        (["--mode", "slow"], "choose from fast, exact"),
        (["epochs"], "expected an option"),
        (["--epochs", "0"], "Expected epochs >= 1. Received: epochs=0"),
    ],
)
def test_bad_overrides_raise_one_line_errors(argv, message):
    with pytest.raises(ConfigError) as error:
        parse_overrides(Config, argv)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_dashes_and_underscores_are_interchangeable():
    @dataclass
    class Dashed:
        learning_rate: float = 1.0
        """Step."""

    assert parse_overrides(Dashed, ["--learning-rate", "2"]).learning_rate == 2.0


def test_help_lists_every_field_with_its_doc():
    text = format_help("demo_recipe", "Does things.", Config)
    assert "usage: dlkit run demo_recipe" in text
    assert "--epochs INT  (default: 3)" in text and "Passes over the data." in text
    assert "--mode" in text and "Algorithm variant." in text


@dataclass
class Extended(Config):
    epochs: int = 5
    extra: float = 1.0
    """A field of the subclass."""


def test_inherited_fields_keep_their_docstrings():
    fields = {info.name: info for info in config_fields(Extended)}
    # A field redeclared without a docstring (a new default) keeps the base class's doc.
    assert fields["epochs"].default == 5 and fields["epochs"].doc == "Passes over the data."
    assert fields["rate"].doc == "Step size."
    assert fields["extra"].doc == "A field of the subclass."
    text = format_help("demo_recipe", "Does things.", Extended)
    assert "--epochs INT  (default: 5)" in text and "Passes over the data." in text
