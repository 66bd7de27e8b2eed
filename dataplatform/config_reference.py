"""Generate the README's configuration reference from the pydantic models.

`python -m dataplatform.config_reference` rewrites the block between the markers in
README.md; a test fails when the README and the models disagree.
"""

from __future__ import annotations

import enum
import json
import sys
import types
import typing

from pydantic import BaseModel, EmailStr
from pydantic_core import PydanticUndefined

from dataplatform.config import ENVIRONMENTS_DIR, REPO_ROOT, Environment

START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"
SCHEMA_PATH = ENVIRONMENTS_DIR / "environment.schema.json"
SCHEMA_COMMENT = f"# yaml-language-server: $schema={SCHEMA_PATH.name}"
"""First line of every environment file: the YAML language server (VS Code, JetBrains, Neovim) reads it."""


def _type_name(annotation) -> str:
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is typing.Annotated:
        return _type_name(args[0])
    if annotation is EmailStr:
        return "email address"
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


def json_schema() -> str:
    """The JSON Schema (draft 2020-12) of one environment file, as pydantic generates it from the models."""
    schema = Environment.model_json_schema(by_alias=True, mode="validation")
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "environments/<env>.yaml",
              **{k: v for k, v in schema.items() if k != "title"}}
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> int:
    readme = REPO_ROOT / "README.md"
    text = readme.read_text()
    before, _, rest = text.partition(START)
    _, _, after = rest.partition(END)
    readme.write_text(before + reference() + after)
    SCHEMA_PATH.write_text(json_schema())
    print(f"updated the configuration reference in {readme.relative_to(REPO_ROOT)} and {SCHEMA_PATH.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
