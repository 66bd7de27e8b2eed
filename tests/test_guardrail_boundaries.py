"""Guardrail boundaries: every limit at the limit passes and one past fails, with the exact
message; the odd encodings a real resource may use (port ranges, protocol `all` or `6`, a
firewall rule with no source, numbers as strings, roles at project vs resource level) count
the way GCP reads them. Rules are called directly on a Target: no synth, no cdktn app."""

from __future__ import annotations

import base64
import json

import pytest

from dataplatform.guardrails import RULES_BY_ID, Target
from dataplatform.guardrails.compute import CAPS
from dataplatform.guardrails.rule import Unverified


def check(rule_id: str, rtype: str, attrs: dict, **extra) -> str | None:
    """The rule's message for this resource (None: it passes)."""
    rule = RULES_BY_ID[rule_id]
    assert rule.applies_to(rtype), (rule_id, rtype)
    return rule.check(Target(rtype, attrs, path="s/r", **extra))


def test_a_pipelines_json_built_at_apply_time_is_a_warning_not_a_pass():
    """jsonencode(...) at apply time: nothing is known, so the launch rules warn instead of passing silently."""
    built = {"service_config": {"max_instance_count": 2, "environment_variables": {
        "MAX_ACTIVE_JOBS": "15", "PIPELINES_JSON": "${jsonencode(var.pipelines)}"}}}
    for rule_id in ("GR-CMP-010", "GR-CMP-011", "GR-PRC-002"):
        message = check(rule_id, "google_cloudfunctions2_function", built)
        assert isinstance(message, Unverified), (rule_id, message)
    assert check("GR-PRC-002", "google_cloudfunctions2_function", built) == "PIPELINES_JSON is computed; cannot check max_loads_per_day"
    # a literal JSON that only references a resource (a subnet's self_link) is still read
    literal = {"service_config": {"max_instance_count": 2, "environment_variables": {"MAX_ACTIVE_JOBS": "15", "PIPELINES_JSON": json.dumps(
        {"orders": {"environment": {"maxWorkers": 51, "subnetwork": "${google_compute_subnetwork.s.self_link}",
                                    "ipConfiguration": "WORKER_IP_PRIVATE"}, "parameters": {"max_loads_per_day": 1001}}})}}}
    assert check("GR-CMP-010", "google_cloudfunctions2_function", literal) == "PIPELINES_JSON[orders] maxWorkers is 51, above the cap of 50"
    assert check("GR-PRC-002", "google_cloudfunctions2_function", literal) == "PIPELINES_JSON[orders] max_loads_per_day is 1001"
