"""Reasons kept as "//" comments on a resource's entry in cdk.tf.json (why a grant is project-wide,
why an audit log is on), where reviewers, the checkov mapping and the guardrails read them.

`comment(resource, key, text)` records one in Python; `guardrails.synth` writes them into each
stack's JSON after cdktn wrote it (an `add_override("//.key", ...)` per resource would cost a jsii
round trip each: ~200 of a synth's).
"""

from __future__ import annotations

import weakref

from cdktn import TerraformResource, TerraformStack

from dataplatform import construct_tree, tfjson

_COMMENTS: "weakref.WeakKeyDictionary[TerraformResource, dict[str, str]]" = weakref.WeakKeyDictionary()


def comment(resource: TerraformResource, key: str, text: str) -> None:
    """Keep `text` under `"//": {key: text}` in `resource`'s entry of its stack's cdk.tf.json."""
    _COMMENTS.setdefault(resource, {})[key] = text


def write(stack: TerraformStack, doc: dict) -> dict:
    """Write the comments recorded on `stack`'s resources into `doc` (its Terraform JSON); returns `doc`.
    A resource the document does not hold (moved away by an override) has nowhere to keep them."""
    mine = [(construct_tree.path(r), texts) for r, texts in list(_COMMENTS.items()) if construct_tree.stack_of(r) is stack]
    if not mine:
        return doc
    by_path = {path: body for _, _, path, body in tfjson.bodies(doc)}
    for path, texts in mine:
        body = by_path.get(path)
        if body is not None:
            body.setdefault("//", {}).update(texts)
    return doc
