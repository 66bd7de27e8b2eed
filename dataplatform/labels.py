"""The environment's labels, stamped on every resource that takes labels.

Stamped into the synthesized JSON (not only the provider's default_labels) so that
scanners and reviewers see them. Labels a construct set itself win over the defaults.

`stamp_labels(stack, labels)` does it in one pass at synth (EnvironmentStack runs it from an
`AtSynth` aspect on a leaf construct, once every construct exists); `StampLabels` is the same as
an Aspect for stacks built by hand. An Aspect on a stack is called back from cdktn for every construct in it
(one jsii round trip each, resource or not), the one pass only for the resources that take labels.
"""

from __future__ import annotations

from typing import Any, Callable

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


def stamp(node: IConstruct, labels: dict[str, str]) -> None:
    """Merge `labels` under the labels `node` set itself (its own win), if it is a resource that takes labels."""
    if not isinstance(node, TerraformResource):
        return
    attribute = label_attribute(node)
    if attribute is None:
        return
    existing: Any = getattr(node, f"{attribute}_input", None)
    merged = {**labels, **(existing if isinstance(existing, dict) else {})}
    setattr(node, attribute, merged)


def stamp_labels(scope: IConstruct, labels: dict[str, str]) -> None:
    """Stamp `labels` on every resource in `scope` (the scope included)."""
    labels = dict(labels)
    for node in scope.node.find_all():
        stamp(node, labels)


@jsii.implements(IAspect)
class StampLabels:
    def __init__(self, labels: dict[str, str]):
        self.labels = dict(labels)

    def visit(self, node: IConstruct) -> None:
        stamp(node, self.labels)


@jsii.implements(IAspect)
class AtSynth:
    """Runs `action` once, at synth, when cdktn visits the (leaf) construct this aspect is added to."""

    def __init__(self, action: Callable[[], None]):
        self._action = action
        self._done = False

    def visit(self, node: IConstruct) -> None:
        if not self._done:
            self._done = True
            self._action()
