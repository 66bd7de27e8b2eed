"""Generate the README's configuration reference from the pydantic models.

`python -m dataplatform.config_reference` rewrites the block between the markers in
README.md; a test fails when the README and the models disagree.
"""

from __future__ import annotations

import enum
import sys
import types
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from dataplatform.config import REPO_ROOT, Environment

START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"


def _type_name(annotation) -> str:
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        inner = " \\| ".join(_type_name(a) for a in args)
        return f"{inner} (optional)" if len(args) < len(typing.get_args(annotation)) else inner
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return "map of string to string"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(f"`{m.value}`" for m in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    return getattr(annotation, "__name__", str(annotation))


def _nested_model(annotation) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _nested_model(arg)
        if found:
            return found
    return None


def _default(field) -> str:
    if field.default is not PydanticUndefined:
        value = field.default.value if isinstance(field.default, enum.Enum) else field.default
        if value is None:
            return "—"
        return '`""`' if value == "" else f"`{value}`"
    if field.default_factory is not None:
        return "(defaults below)"
    return "**required**"


def rows(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        path = f"{prefix}{key}"
        out.append(f"| `{path}` | {_type_name(field.annotation)} | {_default(field)} | {field.description or ''} |")
        nested = _nested_model(field.annotation)
        if nested is not None:
            is_list = typing.get_origin(field.annotation) is list
            out += rows(nested, f"{path}[]." if is_list else f"{path}.")
    return out


def reference() -> str:
    header = ["| field | type | default | description |", "|---|---|---|---|"]
    return "\n".join([START, *header, *rows(Environment), END])


def main() -> int:
    readme = REPO_ROOT / "README.md"
    text = readme.read_text()
    before, _, rest = text.partition(START)
    _, _, after = rest.partition(END)
    readme.write_text(before + reference() + after)
    print(f"updated the configuration reference in {readme.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
