"""Field descriptions from attribute docstrings, read only when a JSON Schema is made.

Why not pydantic's `use_attribute_docstrings`: it reads every class's source while the
class is created, which cost `check` about 15% of its start-up for text that only the
JSON Schema (`modelspec schema`, editors) shows. `SpecModel` installs
`describe_fields` as its `json_schema_extra`, so every model's schema gets the same
descriptions, with pydantic's rule: a field's docstring is the string literal right
under its annotation, in the class that declares the field last.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from typing import Any


def describe_fields(schema: dict[str, Any], cls: type) -> None:
    """pydantic's `json_schema_extra` hook: add each field's docstring as its
    description (an explicit `Field(description=...)` wins)."""
    props = schema.get("properties", {})
    for name, field in getattr(cls, "model_fields", {}).items():
        prop = props.get(field.alias or name)
        doc = _declared_doc(cls, name)
        if prop is not None and doc and "description" not in prop:
            prop["description"] = doc


def _declared_doc(cls: type, name: str) -> str | None:
    for klass in cls.__mro__:
        if name in klass.__dict__.get("__annotations__", {}):
            return _own_docs(klass).get(name)
    return None


@functools.cache
def _own_docs(klass: type) -> dict[str, str]:
    """{field: docstring} of one class body (string literals right after annotations)."""
    try:
        source = textwrap.dedent(inspect.getsource(klass))
    except (OSError, TypeError):
        return {}
    body = ast.parse(source).body[0]
    docs = {}
    for first, second in zip(body.body, body.body[1:], strict=False):
        if (
            isinstance(first, ast.AnnAssign)
            and isinstance(first.target, ast.Name)
            and isinstance(second, ast.Expr)
            and isinstance(second.value, ast.Constant)
            and isinstance(second.value.value, str)
        ):
            docs[first.target.id] = inspect.cleandoc(second.value.value)
    return docs
