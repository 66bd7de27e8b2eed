"""Inventory tier (Cloud Foundation Fabric style): per stack, resource counts by type and the key
values of each resource by construct path, recorded in tests/inventories/<stack>.yaml.

The inventories are generated (`make baselines`), never edited by hand: a change that adds,
removes or reshapes resources shows up as a diff of these files in the same pull request,
which is what reviewers read. A new environment's inventories are recorded on its first run.
Which attributes count as "key" is decided per resource type below, once for every stack.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.baselines import COMMAND, Baselines, without_asset_hashes
from tests.support import iter_resources, stack_names

INVENTORIES = Baselines(Path(__file__).parent / "inventories", ".yaml",
                        header=f"Generated from the synth by `{COMMAND}`: do not edit. Counts by type, key values by construct path.")

IAM = ("role", "member", "condition")
# Resource type -> the attributes worth reading in review (dotted: a part of a nested block).
KEY_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "google_storage_bucket": ("name", "location", "uniform_bucket_level_access", "public_access_prevention", "versioning",
                              "lifecycle", "force_destroy", "soft_delete_policy", "labels"),
    "google_storage_managed_folder": ("name", "force_destroy"),
    "google_storage_bucket_object": ("name", "bucket"),
    "google_project_service": ("service", "disable_on_destroy"),
    "google_project_iam_audit_config": ("service", "audit_log_config"),
    "google_iam_workload_identity_pool": ("workload_identity_pool_id",),
    "google_iam_workload_identity_pool_provider": ("workload_identity_pool_provider_id", "attribute_condition"),
    "google_service_account": ("account_id",),
    "google_compute_network": ("name", "auto_create_subnetworks"),
    "google_compute_subnetwork": ("name", "ip_cidr_range", "region", "private_ip_google_access", "log_config"),
    "google_compute_firewall": ("direction", "priority", "source_ranges", "source_service_accounts", "target_service_accounts",
                                "allow", "deny"),
    "google_compute_instance": ("name", "machine_type", "zone", "service_account.email", "metadata.enable-oslogin",
                                "metadata.block-project-ssh-keys", "shielded_instance_config"),
    "google_bigquery_dataset": ("dataset_id", "location", "delete_contents_on_destroy", "lifecycle"),
    "google_bigquery_table": ("table_id", "deletion_protection", "time_partitioning"),
    "google_secret_manager_secret": ("secret_id",),
    "google_dataproc_cluster": ("name", "cluster_config.gce_cluster_config.internal_ip_only", "cluster_config.lifecycle_config",
                                "cluster_config.software_config", "cluster_config.worker_config", "cluster_config.preemptible_worker_config"),
    "google_dataproc_autoscaling_policy": ("worker_config", "secondary_worker_config"),
    "google_composer_environment": ("name", "config.resilience_mode", "config.enable_private_environment",
                                    "config.enable_private_builds_only", "config.environment_size", "config.workloads_config"),
    "google_cloudfunctions2_function": ("name", "build_config.runtime", "build_config.entry_point", "service_config.max_instance_count",
                                        "service_config.min_instance_count", "service_config.ingress_settings", "event_trigger"),
    "google_cloud_scheduler_job": ("name", "schedule", "http_target.uri", "http_target.http_method"),
    "google_dataplex_datascan": ("data_scan_id", "execution_spec"),
    "google_monitoring_alert_policy": ("display_name",),
    "google_billing_budget": ("amount", "budget_filter"),
    "google_artifact_registry_repository": ("format", "repository_id"),
    "google_cloudbuild_trigger": ("filename", "included_files"),
}


def key_attributes(rtype: str) -> tuple[str, ...]:
    return IAM if rtype.endswith(("_iam_member", "_iam_binding")) else KEY_ATTRIBUTES.get(rtype, ())


def pick(body: dict, dotted: str) -> dict:
    """{a: {b: value}} for "a.b" when body has it (a list of one block is looked into), else {}."""
    head, _, rest = dotted.partition(".")
    if head not in body:
        return {}
    value = body[head]
    if not rest:
        return {head: value}
    inner = value[0] if isinstance(value, list) and len(value) == 1 else value
    picked = pick(inner, rest) if isinstance(inner, dict) else {}
    return {head: picked} if picked else {}


def merge(into: dict, part: dict) -> dict:
    for key, value in part.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value
    return into


def inventory(stack: dict) -> dict[str, Any]:
    counts = Counter(rtype for rtype, _, _ in iter_resources(stack))
    values = {}
    for rtype, path, body in iter_resources(stack):
        selected: dict = {}
        for attribute in key_attributes(rtype):
            merge(selected, pick(body, attribute))
        if selected:
            values[path] = selected
    return without_asset_hashes({"counts": dict(sorted(counts.items())), "values": dict(sorted(values.items()))})


STACKS = stack_names()


def test_every_stack_comes_from_an_environment_file(stacks, pytestconfig):
    assert sorted(stacks) == sorted(STACKS)
    stale = INVENTORIES.prune(pytestconfig, STACKS)
    assert not stale, f"inventories of stacks that no longer exist: {', '.join(stale)}; run `{COMMAND}`"


@pytest.mark.parametrize("stack_name", STACKS)
def test_inventory(stacks, stack_name, pytestconfig):
    INVENTORIES.check(pytestconfig, stack_name, inventory(stacks[stack_name]))


def test_every_key_attribute_is_read_from_the_synth(stacks):
    """A key attribute that no resource of its type has is a typo in KEY_ATTRIBUTES (it would record nothing)."""
    present: dict[str, set[str]] = {}
    for stack in stacks.values():
        for rtype, _, body in iter_resources(stack):
            for attribute in key_attributes(rtype):
                if pick(body, attribute):
                    present.setdefault(rtype, set()).add(attribute)
    synthesized = {rtype for stack in stacks.values() for rtype, _, _ in iter_resources(stack)}
    never = {f"{t}.{a}" for t, attrs in KEY_ATTRIBUTES.items() if t in synthesized for a in attrs if a not in present.get(t, set())}
    optional = {"google_storage_bucket.soft_delete_policy", "google_dataproc_cluster.cluster_config.preemptible_worker_config",
                "google_compute_firewall.deny", "google_compute_firewall.allow", "google_compute_firewall.source_ranges",
                "google_compute_firewall.source_service_accounts", "google_compute_firewall.target_service_accounts"}
    assert never <= optional, sorted(never - optional)


def test_pick_reads_nested_blocks():
    body = {"config": [{"a": 1, "b": {"c": 2}}], "name": "x"}
    assert pick(body, "config.b.c") == {"config": {"b": {"c": 2}}}
    assert pick(body, "config.z") == {} and pick(body, "nope") == {}
    assert merge(pick(body, "config.a"), pick(body, "config.b")) == {"config": {"a": 1, "b": {"c": 2}}}

