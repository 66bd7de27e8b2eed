"""The shape of a guardrail rule and the small helpers rules share.

A rule sees one Terraform resource as it will be written to cdk.tf.json (final attributes,
escape-hatch overrides included, tokens resolved to "${...}" expressions) and returns
None when the resource is fine, or a message saying what is wrong.
"""

from __future__ import annotations

import base64
import fnmatch
import functools
import json
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Iterator, Mapping


class Severity(str, Enum):
    ERROR = "error"  # refuses synth
    WARNING = "warning"  # reported, never fails


@dataclass(frozen=True)
class Target:
    """What a rule inspects: one resource's type, construct path and final attributes."""

    type: str
    attrs: dict[str, Any]
    path: str = ""
    label_attribute: str | None = None
    """Attribute holding GCP labels (`dataplatform.labels.label_attribute`), None if it takes none."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """The resource's "//" comments in cdk.tf.json beyond cdktn's own metadata (e.g. `project_scope_reason`)."""


class Unverified(str):
    """A message for a value only known at apply time ("${...}"): reported as a warning."""


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    description: str
    fix: str
    resource_types: tuple[str, ...]
    """Terraform types this rule inspects; shell patterns allowed (`google_*_iam_member`)."""
    check: Callable[[Target], str | None]

    def applies_to(self, resource_type: str) -> bool:
        return _matches(self.resource_types, resource_type)


@functools.lru_cache(maxsize=None)
def _matches(patterns: tuple[str, ...], resource_type: str) -> bool:
    """Whether a type matches any pattern: asked for every rule and resource, answered once per pair of types."""
    return any(fnmatch.fnmatchcase(resource_type, p) for p in patterns)


def rule(id_: str, severity: Severity, description: str, fix: str, *types: str):
    """Decorator turning `check(target) -> message | None` into a Rule."""

    def wrap(check: Callable[[Target], str | None]) -> Rule:
        return Rule(id_, severity, description, fix, types, check)

    return wrap


ERROR, WARNING = Severity.ERROR, Severity.WARNING


# ---------------------------------------------------------------- attribute helpers


def computed(value: Any) -> bool:
    """True for values Terraform only knows at apply time (a "${...}" expression)."""
    return isinstance(value, str) and "${" in value


_DURATION = re.compile(r"-?\d+(\.\d{1,9})?s")


def duration_seconds(value: Any) -> float | None:
    """Seconds of a protobuf Duration in its JSON form ("3600s", "0.5s": up to nine fractional digits,
    as the APIs take it), None if it is not one (a number, "10m", "600", a "${...}" expression)."""
    return float(value[:-1]) if isinstance(value, str) and _DURATION.fullmatch(value) else None


def block(value: Any) -> dict[str, Any]:
    """A nested block as a dict: Terraform JSON writes a block as an object or a one-item list."""
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, dict) else {}


def blocks(value: Any) -> list[dict[str, Any]]:
    """A repeated block as a list of dicts (an object counts as a one-item list)."""
    if isinstance(value, dict):
        return [value]
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def get(attrs: dict[str, Any], path: str, default: Any = None) -> Any:
    """`get(attrs, "cluster_config.gce_cluster_config.internal_ip_only")` through nested blocks."""
    current: Any = attrs
    for key in path.split("."):
        current = block(current).get(key)
        if current is None:
            return default
    return current


def is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def is_false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.lower() == "false")


def members(attrs: dict[str, Any]) -> Iterator[str]:
    """Every IAM member string of an *_iam_member / *_iam_binding resource."""
    if isinstance(attrs.get("member"), str):
        yield attrs["member"]
    if isinstance(attrs.get("members"), list):
        yield from (m for m in attrs["members"] if isinstance(m, str))


def request_uri(t: Target) -> str:
    """The URI a Cloud Scheduler job calls (http_target.uri), "" if none."""
    return str(get(t.attrs, "http_target.uri") or "")


def request_body(t: Target) -> dict[str, Any] | str | None:
    """The JSON object a Cloud Scheduler job sends (http_target.body, base64): the dict; the "${...}"
    expression itself when it is built at apply time; None when absent or not base64 JSON of an object."""
    body = get(t.attrs, "http_target.body")
    if computed(body):
        return body
    try:
        request = json.loads(base64.b64decode(str(body))) if body else None
    except ValueError:  # not base64 (binascii.Error), not UTF-8, not JSON
        return None
    return request if isinstance(request, dict) else None


def pipelines_json(t: Target) -> Any:
    """A function's PIPELINES_JSON (the launcher's contract, workloads/launcher) as {pipeline: config};
    the value as written when it is not a JSON object (computed() tells one built at apply time,
    jsonencode(...)); None when the function has none."""
    value = get(t.attrs, "service_config.environment_variables.PIPELINES_JSON")
    if not isinstance(value, str):
        return value
    try:  # a literal JSON holding a "${...}" reference (a subnet's self_link) still parses: check what it says
        configs = json.loads(value)
    except ValueError:
        return value
    return configs if isinstance(configs, dict) else value


def as_int(value: Any) -> int | None:
    """An integer attribute (Terraform JSON accepts numbers as strings), None if unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def expect(value: Any, ok: Callable[[Any], bool], message: str) -> str | None:
    """None if `ok(value)`; the message if not; an Unverified message for a computed value."""
    if computed(value):
        return Unverified(f"{message} (cannot verify at synth: value is {value!r})")
    return None if ok(value) else message
