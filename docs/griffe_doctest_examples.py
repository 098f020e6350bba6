"""Griffe extension: render Keras-style ``Example:`` sections as highlighted doctests.

dlkit's docstrings follow the Keras house style, where the doctest under ``Example:`` starts at
the same indentation as the section title::

    Example:

    >>> layer.kernel.shape
    (4, 3)

Python's doctest runs this fine, but the Google docstring parser only sees a section when its
content is indented, and it reads the singular ``Example:`` as an admonition whose ``>>>`` lines
Markdown would turn into nested block quotes. Before parsing, this extension indents such a body
and renames the title to ``Examples:``, the section griffe renders as highlighted Python console
code. It changes only the rendered documentation, never the source.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_TITLE = re.compile(r"^(Example|Examples):\s*$")
# Any Google section title at column 0 (``Reference:``, ``Raises:``...) ends the example.
_ANY_TITLE = re.compile(r"^[A-Z][A-Za-z ]*:\s*$")


def indent_example_sections(text: str) -> str:
    """Returns ``text`` with each ``Example(s):`` section made a well-formed Examples section."""
    lines = text.split("\n")
    output: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not _TITLE.match(line):
            output.append(line)
            continue
        body_start = index
        while body_start < len(lines) and not lines[body_start].strip():
            body_start += 1
        if body_start == len(lines) or not lines[body_start].lstrip().startswith((">>>", "```")):
            output.append(line)  # Empty, or not an example we recognise: leave it alone.
            continue
        output.append("Examples:")
        if lines[body_start].startswith((" ", "\t")):
            index = body_start  # Already indented: only the title needed changing.
            continue
        index = body_start
        in_fence = False
        while index < len(lines):
            item = lines[index]
            if item.startswith("```"):
                in_fence = not in_fence
            elif not in_fence and _ANY_TITLE.match(item) and not lines[index - 1].strip():
                break
            output.append("    " + item if item.strip() else "")
            index += 1
    return "\n".join(output)


class DoctestExamples(griffe.Extension):
    """Rewrites the example sections of every docstring that griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = indent_example_sections(obj.docstring.value)
