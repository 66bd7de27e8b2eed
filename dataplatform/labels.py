"""The environment's labels, stamped on every resource that takes labels.

Stamped into the synthesized JSON (not only the provider's default_labels) so that
scanners and reviewers see them. Labels a construct set itself win over the defaults.

`stamp_document(resources, labels)` does it on the stack's written JSON, in Python (EnvironmentStack
runs it as its guardrail `prepare`: no jsii round trip); `StampLabels` does it as an Aspect, for
stacks built by hand (cdktn calls an Aspect back for every construct: a jsii round trip each,
and two more per resource that takes labels).
"""

from __future__ import annotations

from typing import Any, Iterable

import jsii
from cdktn import IAspect, TerraformResource
from constructs import IConstruct

from dataplatform.resource_types import resource_type

# Resource types whose `labels` attribute is not resource labels (e.g. a notification
# channel's `labels` is its address); their real labels live under another name.
LABEL_ATTRIBUTE: dict[str, str | None] = {
    "google_monitoring_notification_channel": "user_labels",
    "google_monitoring_alert_policy": "user_labels",
    "google_monitoring_custom_service": "user_labels",
    "google_monitoring_slo": "user_labels",
    "google_monitoring_metric_descriptor": None,  # its `labels` are label descriptors
}


_BY_CLASS: dict[type, str | None] = {}
LABEL_ATTRIBUTE_BY_TYPE: dict[str, str | None] = {}
"""Filled as resources are seen: Terraform type -> label attribute (read by the guardrails)."""


def label_attribute(resource: TerraformResource) -> str | None:
    """The attribute holding GCP labels on this resource, or None if it takes none.

    Cached per provider class: asking jsii for the resource type costs a round trip per node.
    """
    cls = type(resource)
    if cls not in _BY_CLASS:
        rtype = resource_type(resource)
        attribute = LABEL_ATTRIBUTE[rtype] if rtype in LABEL_ATTRIBUTE else ("labels" if hasattr(cls, "reset_labels") else None)
        _BY_CLASS[cls] = LABEL_ATTRIBUTE_BY_TYPE[rtype] = attribute
    return _BY_CLASS[cls]


def merged(labels: dict[str, str], own: Any) -> dict[str, Any]:
    """`labels` under the labels a resource set itself (its own win)."""
    return {**labels, **(own if isinstance(own, dict) else {})}


def stamp(node: IConstruct, labels: dict[str, str]) -> None:
    """Merge `labels` under the labels `node` set itself, if it is a resource that takes labels."""
    if not isinstance(node, TerraformResource):
        return
    attribute = label_attribute(node)
    if attribute is not None:
        setattr(node, attribute, merged(labels, getattr(node, f"{attribute}_input", None)))


def learn_label_attributes(scope: IConstruct, rtypes: Iterable[str]) -> None:
    """Fill LABEL_ATTRIBUTE_BY_TYPE for `rtypes` (Terraform types of resources under `scope`): if one
    is not known yet, from every resource class under `scope` (one jsii call for the tree)."""
    if all(rtype in LABEL_ATTRIBUTE_BY_TYPE for rtype in rtypes):
        return
    for node in scope.node.find_all():
        if isinstance(node, TerraformResource) and type(node) not in _BY_CLASS:
            label_attribute(node)


def stamp_document(scope: IConstruct, doc: dict, labels: dict[str, str]) -> None:
    """Merge `labels` under the labels of every resource in `doc` (the Terraform JSON of `scope`,
    a stack) that takes labels."""
    resources = doc.get("resource") or {}
    learn_label_attributes(scope, resources)
    for rtype, items in resources.items():
        attribute = LABEL_ATTRIBUTE_BY_TYPE.get(rtype)
        for body in items.values() if attribute else ():
            body[attribute] = merged(labels, body.get(attribute))


@jsii.implements(IAspect)
class StampLabels:
    def __init__(self, labels: dict[str, str]):
        self.labels = dict(labels)

    def visit(self, node: IConstruct) -> None:
        stamp(node, self.labels)
