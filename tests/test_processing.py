"""The launch design's infrastructure: limits with boundary cases, the follow-up queue and its
grants, and the launch settings of every pipeline where they are rendered (and nowhere else)."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import ValidationError

from dataplatform.config import Pipeline, ProcessingSettings
from tests.support import fired, of_type

SCHEMA = [{"name": "id", "type": "STRING", "mode": "REQUIRED"}]


def launcher(max_active_jobs="15", instances=2, loads=("288",)) -> dict:
    pipelines = {f"p{i}": {"parameters": {"max_loads_per_day": v}, "environment": {}} for i, v in enumerate(loads)}
    env = {"PIPELINES_JSON": json.dumps(pipelines)}
    if max_active_jobs is not None:
        env["MAX_ACTIVE_JOBS"] = max_active_jobs
    return {"service_config": {"max_instance_count": instances, "environment_variables": env}}


# --- GR-PRC-001: MAX_ACTIVE_JOBS + instances - 1 <= 25 ------------------------------------------

@pytest.mark.parametrize("max_active_jobs, instances, ok", [
    ("15", 11, True),   # 15 + 11 - 1 = 25: at the quota
    ("15", 12, False),  # 26: one past
    ("25", 1, True), ("26", 1, False), ("1", 20, True), ("6", 20, True), ("7", 20, False),
])
def test_job_budget_boundary(max_active_jobs, instances, ok):
    findings = fired("GR-PRC-001", "google_cloudfunctions2_function", launcher(max_active_jobs, instances))
    assert (findings == []) is ok
    if not ok:
        assert findings[0].severity.value == "error" and "> 25" in findings[0].message


@pytest.mark.parametrize("max_active_jobs, message", [(None, "not set"), ("0", "positive"), ("x", "positive"), ("-1", "positive")])
def test_job_budget_must_be_set_and_positive(max_active_jobs, message):
    (finding,) = fired("GR-PRC-001", "google_cloudfunctions2_function", launcher(max_active_jobs))
    assert message in finding.message


def test_job_budget_computed_values_are_warnings_and_other_functions_are_not_judged():
    (finding,) = fired("GR-PRC-001", "google_cloudfunctions2_function", launcher("${var.jobs}"))
    assert finding.severity.value == "warning"
    assert fired("GR-PRC-001", "google_cloudfunctions2_function", {"service_config": {"max_instance_count": 50}}) == []


# --- GR-PRC-002: 1 <= max_loads_per_day <= 1000 for every pipeline -----------------------------

@pytest.mark.parametrize("loads, ok", [(("1000",), True), (("1001",), False), (("1",), True), (("0",), False),
                                       (("288", "1001"), False), ((None,), False), (("many",), False)])
def test_daily_load_budget_boundary(loads, ok):
    findings = fired("GR-PRC-002", "google_cloudfunctions2_function", launcher(loads=loads))
    assert (findings == []) is ok
    if not ok:
        assert "max_loads_per_day" in findings[0].message


# --- GR-PRC-003: Scheduler never calls Dataflow directly ---------------------------------------

@pytest.mark.parametrize("uri, ok", [
    ("https://cloudtasks.googleapis.com/v2/projects/p/locations/r/queues/q/tasks", True),
    ("https://dataflow.googleapis.com/v1b3/projects/p/locations/r/flexTemplates:launch", False),
    ("https://dataflow.googleapis.com/v1b3/projects/p/locations/r/templates:launch", False),
    ("https://dataflow.googleapis.com/v1b3/projects/p/locations/r/jobs", False),
    ("https://example.com/hook", True),
])
def test_scheduler_goes_through_the_queue(uri, ok):
    assert (fired("GR-PRC-003", "google_cloud_scheduler_job", {"http_target": {"uri": uri}}) == []) is ok


# --- config: the same limits, refused before synth ---------------------------------------------

@pytest.mark.parametrize("jobs, instances, ok", [(15, 11, True), (15, 12, False), (25, 1, True), (24, 2, True), (24, 3, False)])
def test_config_keeps_the_job_budget_within_the_quota(jobs, instances, ok):
    data = {"max_concurrent_jobs": jobs, "launcher_max_instances": instances}
    if ok:
        assert ProcessingSettings.model_validate(data).max_concurrent_jobs == jobs
    else:
        with pytest.raises(ValidationError, match="above Dataflow's 25 concurrent jobs"):
            ProcessingSettings.model_validate(data)


@pytest.mark.parametrize("field, at_limit, past", [
    ("max_loads_per_day", 1000, 1001), ("max_file_attempts", 10, 11), ("max_files_per_run", 100_000, 100_001),
    ("max_bytes_per_run", 1_048_576, 1_048_577),
])
def test_pipeline_run_bounds_have_upper_limits(field, at_limit, past):
    base = {"name": "orders", "trigger": "on_arrival", "schema": SCHEMA}
    assert getattr(Pipeline.model_validate({**base, field: at_limit}), field) == at_limit
    with pytest.raises(ValidationError, match="less than or equal"):
        Pipeline.model_validate({**base, field: past})
    assert getattr(Pipeline.model_validate({**base, field: 1}), field) == 1
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        Pipeline.model_validate({**base, field: 0})


def test_follow_up_queue_needs_at_least_one_dispatch():
    from dataplatform.constructs.followups import FollowUpQueueProps  # provider bindings: imported only here

    with pytest.raises(ValueError, match="at least 1"):
        FollowUpQueueProps(name="q", project="p", region="r", target_uri="https://x", invoker=None, max_concurrent_dispatches=0)


# --- the synthesized platform ------------------------------------------------------------------

def launch_configs(platform: dict) -> dict:
    (function,) = of_type(platform, "google_cloudfunctions2_function").values()
    return json.loads(function["service_config"]["environment_variables"]["PIPELINES_JSON"])


def test_launch_settings_from_config_for_every_pipeline_where_rendered(stacks, environments):
    """maxWorkers, IP configuration, worker SA and subnet, per pipeline: in the launcher's config
    (the only place launches are built from), and absent from Scheduler bodies and pipelines.json."""
    for name, env in environments.items():
        platform = stacks[f"{name}-platform"]
        configs = launch_configs(platform)
        (subnet,) = of_type(platform, "google_compute_subnetwork").values()
        worker_sa = f"{env.namer.service_account('etl-worker')}@{env.project_id}.iam.gserviceaccount.com"
        for p in env.pipelines:
            environment = configs[p.name]["environment"]
            assert environment["maxWorkers"] == p.max_workers, (name, p.name)
            assert environment["ipConfiguration"] == "WORKER_IP_PRIVATE", (name, p.name)
            assert environment["serviceAccountEmail"] == worker_sa, (name, p.name)
            assert environment["subnetwork"] == f"regions/{env.region}/subnetworks/{subnet['name']}", (name, p.name)
            parameters = configs[p.name]["parameters"]
            assert (parameters["max_files_per_run"], parameters["max_bytes_per_run"], parameters["max_file_attempts"],
                    parameters["max_loads_per_day"]) == tuple(str(v) for v in (p.max_files_per_run, p.max_bytes_per_run,
                                                                               p.max_file_attempts, p.max_loads_per_day))
            assert parameters["archive_prefix"] == f"gs://{env.namer.bucket('landing')}/_archive/{p.name}/"
            assert configs[p.name]["on_arrival"] is p.on_arrival
        for job in of_type(platform, "google_cloud_scheduler_job").values():
            assert "maxWorkers" not in base64.b64decode(job["http_target"]["body"]).decode()
        dags = json.loads(of_type(platform, "google_storage_bucket_object")["dags/pipelines-json"]["content"])
        for pipeline, entry in dags.items():
            assert "environment" not in entry and "parameters" not in entry
            assert entry["followup_queue"] == configs[pipeline]["parameters"]["followup_queue"]
            assert entry["output_table"] == configs[pipeline]["parameters"]["output_table"]


def test_every_launcher_setting_of_the_job_budget(stacks, environments):
    for name, env in environments.items():
        (function,) = of_type(stacks[f"{name}-platform"], "google_cloudfunctions2_function").values()
        variables = function["service_config"]["environment_variables"]
        assert variables["MAX_ACTIVE_JOBS"] == str(env.processing.max_concurrent_jobs)
        assert variables["FOLLOWUP_QUEUE"] == f"projects/{env.project_id}/locations/{env.region}/queues/{env.namer.base}-etl-followups"


def test_follow_up_queue_routes_to_the_launcher_as_the_launcher(stacks, environments):
    for name, env in environments.items():
        platform = stacks[f"{name}-platform"]
        (queue,) = of_type(platform, "google_cloud_tasks_queue").values()
        (function_path,) = of_type(platform, "google_cloudfunctions2_function")
        target = queue["http_target"]
        assert target["uri_override"]["uri_override_enforce_mode"] == "ALWAYS"
        assert "service_config[0].uri" in target["oidc_token"]["audience"]
        launcher_sa = f"{env.namer.service_account('launcher')}@{env.project_id}.iam.gserviceaccount.com"
        assert target["oidc_token"]["service_account_email"] == launcher_sa
        assert queue["rate_limits"]["max_concurrent_dispatches"] == env.processing.launcher_max_instances
        assert queue["retry_config"]["max_attempts"] == -1 and queue["retry_config"]["max_retry_duration"] == "86400s"
        (invoker,) = of_type(platform, "google_cloud_run_v2_service_iam_member").values()
        assert invoker["role"] == "roles/run.invoker" and invoker["member"] == f"serviceAccount:{launcher_sa}"


def test_only_the_run_requesters_may_enqueue(stacks, environments):
    for name, env in environments.items():
        grants = of_type(stacks[f"{name}-platform"], "google_cloud_tasks_queue_iam_member").values()
        assert {g["role"] for g in grants} == {"roles/cloudtasks.enqueuer"}
        expected = ["etl-worker", "launcher"] + (["orchestrator"] if env.orchestration.scheduled_by.value == "airflow" else [])
        members = {f"serviceAccount:{env.namer.service_account(k)}@{env.project_id}.iam.gserviceaccount.com" for k in expected}
        members.add(f"group:{env.operators_group}")  # on-call re-runs a failed load (the job-failed runbook)
        assert sorted(g["member"] for g in grants) == sorted(members), name
