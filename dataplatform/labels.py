"""One Aspect stamps the environment's labels on every resource that takes labels.

Stamped into the synthesized JSON (not only the provider's default_labels) so that
scanners and reviewers see them. Labels a construct set itself win over the defaults.
"""

from __future__ import annotations

from typing import Any

import jsii
from cdktn import IAspect, TerraformResource
from constructs import IConstruct

# Resource types whose `labels` attribute is not resource labels (e.g. a notification
# channel's `labels` is its address); their real labels live under another name.
LABEL_ATTRIBUTE: dict[str, str | None] = {
    "google_monitoring_notification_channel": "user_labels",
    "google_monitoring_alert_policy": "user_labels",
}


def label_attribute(resource: TerraformResource) -> str | None:
    """The attribute holding GCP labels on this resource, or None if it takes none."""
    rtype = resource.terraform_resource_type
    if rtype in LABEL_ATTRIBUTE:
        return LABEL_ATTRIBUTE[rtype]
    return "labels" if hasattr(type(resource), "reset_labels") else None


@jsii.implements(IAspect)
class StampLabels:
    def __init__(self, labels: dict[str, str]):
        self.labels = dict(labels)

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, TerraformResource):
            return
        attribute = label_attribute(node)
        if attribute is None:
            return
        existing: Any = getattr(node, f"{attribute}_input", None)
        merged = {**self.labels, **(existing if isinstance(existing, dict) else {})}
        setattr(node, attribute, merged)
