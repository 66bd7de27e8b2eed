"""Helpers for the platform's checkov policies (not a check itself).

checkov hands a policy the resource as "hclified" JSON: every scalar is wrapped in a
one-item list and every block is a list of dicts. `value` and `block` undo that.
Policies never import dataplatform (that would start the jsii runtime inside checkov);
they are an independent second reading of cdk.tf.json.
"""

from __future__ import annotations

from typing import Any

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


def value(conf: dict[str, Any], key: str, default: Any = None) -> Any:
    """A scalar / list attribute, unwrapped from checkov's one-item list."""
    v = conf.get(key, default) if isinstance(conf, dict) else default
    while isinstance(v, list) and len(v) == 1 and not isinstance(v[0], dict):
        v = v[0]
    return v


def block(conf: dict[str, Any], path: str) -> dict[str, Any]:
    """A nested block by dotted path ({} if absent)."""
    current: Any = conf
    for key in path.split("."):
        current = current.get(key) if isinstance(current, dict) else None
        if isinstance(current, list):
            current = current[0] if current else None
        if not isinstance(current, dict):
            return {}
    return current


def is_true(v: Any) -> bool:
    return v is True or (isinstance(v, str) and v.lower() == "true")
