"""Event and schedule plumbing shared by constructs: Pub/Sub -> Eventarc -> workflow, and the
authenticated HTTP call a Cloud Scheduler job makes to a Google API."""

from __future__ import annotations

import base64
import json

from cdktn_provider_google.eventarc_trigger import EventarcTrigger, EventarcTriggerMatchingCriteria
from constructs import Construct

PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


def pubsub_to_workflow(scope: Construct, id_: str, *, name: str, location: str, topic_id: str, workflow_id: str,
                       service_account: str) -> EventarcTrigger:
    """Every message published to `topic_id` starts an execution of `workflow_id`, as `service_account`
    (an email: Eventarc's identity for the workflow call)."""
    return EventarcTrigger(scope, id_, name=name, location=location,
                           matching_criteria=[EventarcTriggerMatchingCriteria(attribute="type", value=PUBSUB_PUBLISHED)],
                           transport={"pubsub": {"topic": topic_id}}, destination={"workflow": workflow_id},
                           service_account=service_account)


def api_call(uri: str, body: dict, service_account_email: str) -> dict:
    """A Cloud Scheduler http_target: POST `body` as JSON to a Google API with an OAuth token of the
    account. The body is base64 text, so it may hold no Terraform references, only plain strings."""
    return {"uri": uri, "http_method": "POST", "headers": {"Content-Type": "application/json"},
            "body": base64.b64encode(json.dumps(body, sort_keys=True).encode()).decode(),
            "oauth_token": {"service_account_email": service_account_email, "scope": CLOUD_PLATFORM_SCOPE}}
