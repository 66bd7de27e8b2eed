"""Terraform JSON: reading what was synthesized (cdk.tf.json, or a stack's `to_terraform()`) by
construct path, and writing literal text into it (`literal`).

cdktn's logical ids carry hashes; the `"//"` metadata carries the construct path, which is
what people, reviews, scans and rules should name. Every reader goes through `resources`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator


def literal(text: str) -> str:
    """Escape `${` and `%{` so Terraform passes text (a shell script, a Workflows definition) through
    instead of interpolating it."""
    return text.replace("${", "$${").replace("%{", "%%{")


@dataclass(frozen=True)
class SynthesizedResource:
    type: str
    logical_id: str
    path: str  # full construct path ("dev-platform/landing/bucket"), or "<type>.<id>" without metadata
    body: dict[str, Any]  # attributes, without the "//" comment
    comments: dict[str, Any]  # the "//" comment beyond cdktn's own metadata (e.g. project_scope_reason)

    @property
    def address(self) -> str:
        return f"{self.type}.{self.logical_id}"

    @property
    def relative_path(self) -> str:
        """The construct path below the stack ("landing/bucket")."""
        return self.path.split("/", 1)[-1]


def bodies(stack: dict) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(type, logical id, construct path, body) of every resource, the body being the document's own
    dict (to change it in place); the path is "<type>.<id>" where the "//" metadata lacks one."""
    for rtype, items in (stack.get("resource") or {}).items():
        for logical_id, body in items.items():
            meta = (body.get("//") or {}).get("metadata") or {}
            yield rtype, logical_id, meta.get("path", f"{rtype}.{logical_id}"), body


def resources(stack: dict) -> Iterator[SynthesizedResource]:
    for rtype, logical_id, path, body in bodies(stack):
        comments = {k: v for k, v in (body.get("//") or {}).items() if k != "metadata"}
        yield SynthesizedResource(rtype, logical_id, path, {k: v for k, v in body.items() if k != "//"}, comments)


def dumps(doc: dict) -> str:
    """Terraform JSON as cdktn writes cdk.tf.json (keys sorted, two-space indent, UTF-8 as is), so a
    document read from one and written back is byte for byte the same file."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False)


def manifest_stacks(outdir: str | os.PathLike) -> dict[str, Path]:
    """Stack name -> its cdk.tf.json, as the synth's manifest.json lists them. Stack directories the
    manifest does not list are leftovers of another synth and never count (no phantom stacks)."""
    manifest = Path(outdir, "manifest.json")
    if not manifest.exists():
        return {}
    stacks = json.loads(manifest.read_text()).get("stacks", {})
    return {name: Path(outdir, meta["synthesizedStackPath"]) for name, meta in sorted(stacks.items())}
