"""Cross-cutting rules over every synthesized stack of every environment."""

from __future__ import annotations

import base64
import json

import pytest

from dataplatform.config import REQUIRED_LABELS
from dataplatform.constructs.project_apis import REQUIRED_APIS, api_for
from tests.support import iter_resources, of_type

BASIC = {"roles/owner", "roles/editor", "roles/viewer"}
IAM_MEMBER_TYPES_WITH_ROLE = ("_iam_member", "_iam_binding")


def all_resources(stacks):
    for name, stack in stacks.items():
        for rtype, path, body in iter_resources(stack):
            yield name, rtype, path, body


def test_every_resource_type_has_its_api_enabled(stacks):
    missing = {f"{rtype} -> {api_for(rtype)}" for _, rtype, _, _ in all_resources(stacks) if api_for(rtype) not in REQUIRED_APIS}
    assert not missing


def test_apis_are_enabled_in_every_bootstrap(stacks):
    for name in (n for n in stacks if n.endswith("-bootstrap")):
        enabled = {s["service"] for s in of_type(stacks[name], "google_project_service").values()}
        assert enabled == set(REQUIRED_APIS), name


def test_no_basic_roles_no_public_members_no_keys(stacks):
    for stack, rtype, path, body in all_resources(stacks):
        assert rtype != "google_service_account_key", f"{stack}/{path}"
        if rtype.endswith(IAM_MEMBER_TYPES_WITH_ROLE):
            assert body["role"] not in BASIC, f"{stack}/{path}"
            assert body["member"] not in ("allUsers", "allAuthenticatedUsers"), f"{stack}/{path}"


def test_act_as_is_granted_only_on_named_service_accounts(stacks):
    for stack, rtype, path, body in all_resources(stacks):
        if rtype == "google_project_iam_member":
            assert body["role"] not in ("roles/iam.serviceAccountUser", "roles/iam.serviceAccountTokenCreator"), f"{stack}/{path}"


def test_every_labelable_resource_carries_the_required_labels(stacks):
    checked = 0
    for stack, rtype, path, body in all_resources(stacks):
        labels = body.get("user_labels" if rtype.startswith("google_monitoring") else "labels")
        if isinstance(labels, dict):
            checked += 1
            assert set(REQUIRED_LABELS) | {"env", "managed_by"} <= set(labels), f"{stack}/{path}"
    assert checked >= 10


def test_buckets_are_private_uniform_and_never_force_destroyed(stacks):
    for stack, rtype, path, body in all_resources(stacks):
        if rtype == "google_storage_bucket":
            assert body["uniform_bucket_level_access"] is True, path
            assert body["public_access_prevention"] == "enforced", path
            assert body["force_destroy"] is False, path
            assert body["lifecycle_rule"], f"{stack}/{path}: lake buckets need lifecycle rules"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_data_survives_destroy(stacks, env):
    platform = stacks[f"{env}-platform"]
    for key in ("landing", "curated", "quarantine", "control"):
        bucket = next(b for p, b in of_type(platform, "google_storage_bucket").items() if p == f"{key}/bucket")
        assert bucket["lifecycle"]["prevent_destroy"] is True and bucket["versioning"]["enabled"] is True
    for dataset in of_type(platform, "google_bigquery_dataset").values():
        assert dataset["delete_contents_on_destroy"] is False and dataset["lifecycle"]["prevent_destroy"] is True
    for table in of_type(platform, "google_bigquery_table").values():
        assert table["deletion_protection"] is True


def test_checkpoints_are_never_managed_by_terraform(stacks):
    for stack, rtype, path, body in all_resources(stacks):
        if rtype == "google_storage_bucket_object":
            assert "control" not in str(body.get("bucket")), f"{stack}/{path} would revert checkpoints"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_uploader_can_only_create_in_its_folders(stacks, environments, env):
    platform = stacks[f"{env}-platform"]
    uploader = [p for p in (*of_type(platform, "google_storage_bucket_iam_member"), *of_type(platform, "google_project_iam_member"))
                if "uploader" in p]
    assert uploader == []
    folder_grants = of_type(platform, "google_storage_managed_folder_iam_member")
    assert len(folder_grants) == len(environments[env].pipelines)
    assert all(g["role"] == "roles/storage.objectCreator" for g in folder_grants.values())


def test_platform_state_lives_in_the_bootstrap_bucket(stacks):
    for env in ("dev", "prod"):
        backend = stacks[f"{env}-platform"]["terraform"]["backend"]["gcs"]
        bucket = of_type(stacks[f"{env}-bootstrap"], "google_storage_bucket")["state/bucket"]["name"]
        assert backend == {"bucket": bucket, "prefix": f"{env}/platform"}
        assert "local" in stacks[f"{env}-bootstrap"]["terraform"]["backend"]


# ---------------------------------------------------------------- cost caps

def _function_cap(body, by_type):
    cap = body["service_config"].get("max_instance_count")
    assert cap and cap <= 100, "function without an instance cap"
    for config in json.loads(body["service_config"]["environment_variables"]["PIPELINES_JSON"]).values():
        assert config["environment"]["maxWorkers"] >= 1, "Dataflow launch without maxWorkers"
    return True


def _dataproc_cap(body, by_type):
    cfg = body["cluster_config"]
    assert cfg["lifecycle_config"]["idle_delete_ttl"].endswith("s"), "Dataproc without idle TTL"
    if "autoscaling_config" in cfg:
        policies = list(by_type["google_dataproc_autoscaling_policy"].values())
        assert policies and all(p["worker_config"]["max_instances"] and "max_instances" in p["secondary_worker_config"] for p in policies)
    else:
        assert cfg["worker_config"]["num_instances"] == 0
    return True


def _scheduler_cap(body, by_type):
    request = json.loads(base64.b64decode(body["http_target"]["body"]))
    uri = body["http_target"]["uri"]
    if "aiplatform.googleapis.com" in uri:  # a Vertex AI pipeline run: every query capped in bytes
        return request["runtimeConfig"]["parameterValues"]["max_bytes_billed"] >= 1
    if "workflowexecutions.googleapis.com" in uri:  # the ML jobs workflow: its jobs carry the cap
        workflows = by_type["google_workflows_workflow"].values()
        return all("maximumBytesBilled" in w["source_contents"] for w in workflows if "jobs.insert" in w["source_contents"])
    return request["launchParameter"]["environment"]["maxWorkers"] >= 1


def _workbench_cap(body, by_type):
    setup = body["gce_setup"]
    return setup["machine_type"] and 600 <= int(setup["metadata"]["idle-timeout-seconds"]) <= 86400


CAPS = {
    "google_compute_instance": lambda body, _: body["machine_type"],
    "google_cloudfunctions2_function": _function_cap,
    "google_dataproc_cluster": _dataproc_cap,
    "google_composer_environment": lambda body, _: body["config"]["workloads_config"]["worker"]["max_count"],
    "google_cloud_scheduler_job": _scheduler_cap,
    "google_workbench_instance": _workbench_cap,
}
UNCAPPABLE_UNLESS_CHECKED = {"google_container_cluster", "google_cloud_run_v2_service", "google_compute_instance_template",
                             "google_compute_instance_group_manager", "google_dataflow_job", "google_dataflow_flex_template_job",
                             "google_notebooks_instance"}


def test_no_uncapped_compute_in_any_environment(stacks):
    """Every compute resource has a cap from config; an unknown compute type fails closed."""
    checked = 0
    for name, stack in stacks.items():
        by_type = {rtype: of_type(stack, rtype) for rtype in stack.get("resource", {})}
        for rtype, items in by_type.items():
            assert rtype not in UNCAPPABLE_UNLESS_CHECKED, f"{name}: add a cost-cap check for {rtype}"
            for path, body in items.items():
                if rtype in CAPS:
                    assert CAPS[rtype](body, by_type), f"{name}/{path}"
                    checked += 1
    assert checked >= 6


@pytest.mark.parametrize("env,expected", [("dev", {"google_compute_instance"}), ("prod", {"google_composer_environment"})])
def test_profile_picks_the_orchestrator(stacks, env, expected):
    types = set(stacks[f"{env}-platform"]["resource"])
    assert expected <= types
    assert not ({"google_compute_instance", "google_composer_environment"} - expected) & types


def test_every_pipeline_has_a_launch_path_and_scans(stacks, environments):
    for env_name, env in environments.items():
        platform = stacks[f"{env_name}-platform"]
        jobs = {b["name"] for b in of_type(platform, "google_cloud_scheduler_job").values()}
        functions = list(of_type(platform, "google_cloudfunctions2_function").values())
        arrivals = set(json.loads(functions[0]["service_config"]["environment_variables"]["PIPELINES_JSON"])) if functions else set()
        scans = {b["data_scan_id"] for b in of_type(platform, "google_dataplex_datascan").values()}
        dags = json.loads(of_type(platform, "google_storage_bucket_object")["dags/pipelines-json"]["content"])
        by_scheduler = env.orchestration.scheduled_by.value == "cloud_scheduler"
        for p in env.pipelines:
            # exactly one launcher per schedule: a Scheduler job, or the DAG (never both)
            assert (f"{env.namer.base}-{p.name.replace('_', '-')}" in jobs) == (p.scheduled and by_scheduler), p.name
            assert (p.name in dags) == p.scheduled and (not p.scheduled or dags[p.name]["launch"] is not by_scheduler), p.name
            assert (p.name in arrivals) == p.on_arrival, p.name
            assert {f"{env.namer.base}-{p.name}-profile", f"{env.namer.base}-{p.name}-quality"} <= scans


def test_every_alert_policy_has_a_runbook(stacks):
    for name, stack in stacks.items():
        for path, policy in of_type(stack, "google_monitoring_alert_policy").items():
            assert len(policy["documentation"]["content"]) > 100, f"{name}/{path}"
            assert policy["notification_channels"], f"{name}/{path}"
