"""Recipe configuration: a ``@dataclass Config`` whose field docstrings are its ``--help``.

A recipe declares its settings as a dataclass; the string literal under each field documents
it. This module reads those docstrings from the source, turns command-line overrides
(``--epochs 5`` or ``--epochs=5``) into a typed ``Config``, and prints the help text. Errors are
``ConfigError`` with a one-line message, which the command line prints without a traceback.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import textwrap
import types
import typing
from collections.abc import Sequence
from typing import Any

__all__ = ["ConfigError", "FieldInfo", "config_fields", "format_help", "parse_overrides"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(ValueError):
    """A bad command-line override: unknown field, missing or unparsable value."""


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """One configurable field of a recipe."""

    name: str
    type: Any
    default: Any
    doc: str


def config_fields(config_cls: type) -> list[FieldInfo]:
    """Lists the fields of a ``Config`` dataclass with their resolved types and docstrings."""
    if not dataclasses.is_dataclass(config_cls) or not isinstance(config_cls, type):
        raise TypeError(f"Expected a dataclass type. Received: config_cls={config_cls!r}")
    hints = typing.get_type_hints(config_cls)
    docs = _field_docstrings(config_cls)
    fields = []
    for field in dataclasses.fields(config_cls):
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = dataclasses.MISSING
        fields.append(FieldInfo(field.name, hints[field.name], default, docs.get(field.name, "")))
    return fields


def _field_docstrings(config_cls: type) -> dict[str, str]:
    # A Config that extends another dataclass (an agent's config) inherits its fields' docs;
    # a field redeclared without a docstring (a new default) keeps the inherited one.
    docs: dict[str, str] = {}
    for cls in reversed(config_cls.__mro__):
        if dataclasses.is_dataclass(cls):
            docs.update(_own_field_docstrings(cls))
    return docs


def _own_field_docstrings(config_cls: type) -> dict[str, str]:
    # Dataclass field docstrings are not kept at run time; read them from the class source.
    try:
        source = textwrap.dedent(inspect.getsource(config_cls))
    except (OSError, TypeError):
        return {}
    class_node = ast.parse(source).body[0]
    docs = {}
    body = getattr(class_node, "body", [])
    for statement, following in itertools.pairwise(body):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[statement.target.id] = " ".join(following.value.value.split())
    return docs


def parse_overrides(config_cls: type, argv: Sequence[str]) -> Any:
    """Builds a ``config_cls`` instance from ``--field value`` overrides of its defaults.

    Args:
        config_cls: the recipe's ``Config`` dataclass.
        argv: arguments such as ``["--epochs", "5", "--learning_rate=1e-3"]``; dashes and
            underscores in field names are interchangeable.

    Returns:
        A ``config_cls`` instance.

    Raises:
        ConfigError: for an unknown field, a missing value or a value of the wrong type.
    """
    fields = {info.name: info for info in config_fields(config_cls)}
    values: dict[str, Any] = {}
    arguments = list(argv)
    while arguments:
        argument = arguments.pop(0)
        if not argument.startswith("--") or argument == "--":
            raise ConfigError(f"expected an option such as --epochs 5, received {argument!r}")
        name, separator, text = argument[2:].partition("=")
        name = name.replace("-", "_")
        if name not in fields:
            choices = ", ".join("--" + key for key in fields)
            raise ConfigError(f"unknown option --{name} (valid options: {choices})")
        if not separator:
            if not arguments:
                raise ConfigError(f"option --{name} needs a value")
            text = arguments.pop(0)
        values[name] = _convert(name, text, fields[name].type)
    missing = [
        name
        for name, info in fields.items()
        if info.default is dataclasses.MISSING and name not in values
    ]
    if missing:
        raise ConfigError("missing required option(s): " + ", ".join("--" + m for m in missing))
    try:
        return config_cls(**values)
    except (TypeError, ValueError) as error:
        raise ConfigError(" ".join(str(error).split())) from error


def _convert(name: str, text: str, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if text.lower() == "none" and type(None) in arguments:
            return None
        options = [a for a in arguments if a is not type(None)]
        for option in options:
            try:
                return _convert(name, text, option)
            except ConfigError:
                continue
        expected = _type_name(annotation)
        raise ConfigError(f"invalid value for --{name}: {text!r} (expected {expected})")
    if origin is typing.Literal:
        for choice in arguments:
            if str(choice) == text:
                return choice
        raise ConfigError(
            f"invalid value for --{name}: {text!r} (choose from {', '.join(map(str, arguments))})"
        )
    if origin in (tuple, list):
        item_type = arguments[0] if arguments else str
        items = [item for item in text.replace(" ", "").split(",") if item]
        converted = [_convert(name, item, item_type) for item in items]
        return tuple(converted) if origin is tuple else converted
    if annotation is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ConfigError(f"invalid value for --{name}: {text!r} (expected true or false)")
    if annotation in (int, float, str):
        try:
            return annotation(text)
        except ValueError:
            raise ConfigError(
                f"invalid value for --{name}: {text!r} (expected {annotation.__name__})"
            ) from None
    raise ConfigError(f"option --{name} has an unsupported type {_type_name(annotation)}")


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def format_help(name: str, description: str, config_cls: type) -> str:
    """Formats ``dlkit run NAME --help``: the description and every field with its doc."""
    lines = [f"usage: dlkit run {name} [--FIELD VALUE ...]", "", description, "", "options:"]
    for info in config_fields(config_cls):
        missing = info.default is dataclasses.MISSING
        default = "required" if missing else f"default: {info.default!r}"
        lines.append(f"  --{info.name} {_type_name(info.type).upper()}  ({default})")
        if info.doc:
            lines.extend("      " + line for line in textwrap.wrap(info.doc, 74))
    return "\n".join(lines)
