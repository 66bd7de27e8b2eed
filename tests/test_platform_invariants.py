"""Cross-cutting rules over every synthesized stack of every environment."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from dataplatform.config import REQUIRED_LABELS, Profile
from dataplatform.constructs.project_apis import REQUIRED_APIS, api_for
from tests.support import environment_names, iter_resources, of_type

ENVS = environment_names()

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


@pytest.mark.parametrize("env", ENVS)
def test_data_survives_destroy(stacks, env):
    platform = stacks[f"{env}-platform"]
    for key in ("landing", "curated", "quarantine", "control", "notebooks"):
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


@pytest.mark.parametrize("env", ENVS)
def test_uploader_can_only_create_in_its_folders(stacks, environments, env):
    platform = stacks[f"{env}-platform"]
    uploader = [p for p in (*of_type(platform, "google_storage_bucket_iam_member"), *of_type(platform, "google_project_iam_member"))
                if "uploader" in p]
    assert uploader == []
    folder_grants = of_type(platform, "google_storage_managed_folder_iam_member")
    by_member = {}
    for path, g in folder_grants.items():
        by_member.setdefault(path.split("iam-", 1)[1].split("-in-")[0].split("-", 1)[1], set()).add((g["role"], path.rsplit("-in-", 1)[1]))
    pipelines = [p.name for p in environments[env].pipelines]
    assert by_member["uploader"] == {("roles/storage.objectCreator", p) for p in pipelines}
    # the ETL moves loaded files out of the pipeline folders into _archive/, and may do nothing else there
    assert by_member["etl-worker"] == {("roles/storage.objectUser", p) for p in pipelines} | {("roles/storage.objectCreator", "_archive")}
    assert set(by_member) == {"uploader", "etl-worker"}


@pytest.mark.parametrize("env", ENVS)
def test_every_state_lives_in_the_bootstrap_bucket(stacks, environments, env):
    """No state on a laptop: the bootstrap's own state moves into the bucket it creates (make deploy)."""
    bucket = of_type(stacks[f"{env}-bootstrap"], "google_storage_bucket")["state/bucket"]["name"]
    assert bucket.endswith(f"-{environments[env].project_number}"), "globally unique by construction"
    assert stacks[f"{env}-platform"]["terraform"]["backend"] == {"gcs": {"bucket": bucket, "prefix": f"{env}/platform"}}
    assert stacks[f"{env}-bootstrap"]["terraform"]["backend"] == {"gcs": {"bucket": bucket, "prefix": f"{env}/bootstrap"}}


def test_first_bootstrap_apply_can_synthesize_local_state(tmp_path, monkeypatch, environments):
    """DP_BOOTSTRAP_BACKEND=local (set by make deploy for the very first apply) puts the state in state/."""
    from cdktn import App

    from dataplatform.stacks.bootstrap import BACKEND_ENV, BootstrapStack

    monkeypatch.setenv(BACKEND_ENV, "local")
    env = next(iter(environments.values()))
    stack = BootstrapStack(App(outdir=str(tmp_path)), f"{env.name}-bootstrap", env)
    assert stack.to_terraform()["terraform"]["backend"] == {"local": {"path": f"../../../state/{env.name}-bootstrap.tfstate"}}


@pytest.mark.parametrize("env", ENVS)
def test_bucket_names_are_unique_by_construction(stacks, environments, env):
    names = [b["name"] for stack in (f"{env}-bootstrap", f"{env}-platform") for b in of_type(stacks[stack], "google_storage_bucket").values()]
    assert names and all(n.endswith(f"-{environments[env].project_number}") for n in names), names


# ---------------------------------------------------------------- cost caps

def _function_cap(body, by_type):
    cap = body["service_config"].get("max_instance_count")
    assert isinstance(cap, int) and cap >= 1, "function without an instance cap"  # its limit is GR-CMP-009's
    for config in json.loads(body["service_config"]["environment_variables"]["PIPELINES_JSON"]).values():
        assert config["environment"]["maxWorkers"] >= 1, "Dataflow launch without maxWorkers"
    return True


def _dataproc_cap(body, by_type):
    cfg = body["cluster_config"]
    assert cfg["lifecycle_config"]["idle_stop_ttl"].endswith("s"), "Dataproc without idle stop"
    if "autoscaling_config" in cfg:
        policies = list(by_type["google_dataproc_autoscaling_policy"].values())
        assert policies and all(p["worker_config"]["max_instances"] and "max_instances" in p["secondary_worker_config"] for p in policies)
    else:
        assert cfg["worker_config"]["num_instances"] == 0
    return True


def _scheduler_cap(body, by_type):
    # A Scheduler job only asks the launcher for a run (the launcher applies maxWorkers and the job budget).
    request = json.loads(base64.b64decode(body["http_target"]["body"]))
    uri = body["http_target"]["uri"]
    if "aiplatform.googleapis.com" in uri:  # a Vertex AI pipeline run: every query capped in bytes
        return request["runtimeConfig"]["parameterValues"]["max_bytes_billed"] >= 1
    if "workflowexecutions.googleapis.com" in uri:  # the ML jobs workflow: its jobs carry the cap
        workflows = by_type["google_workflows_workflow"].values()
        return all("maximumBytesBilled" in w["source_contents"] for w in workflows if "jobs.insert" in w["source_contents"])
    assert "launchParameter" not in json.dumps(request), "Scheduler job launching Dataflow directly"
    return uri.startswith("https://cloudtasks.googleapis.com/v2/")


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


ORCHESTRATOR = {Profile.lean: {"google_compute_instance"}, Profile.managed: {"google_composer_environment"}}


def test_both_profiles_are_covered():
    assert set(ORCHESTRATOR) == set(Profile)


@pytest.mark.parametrize("env", ENVS)
def test_profile_picks_the_orchestrator(stacks, environments, env):
    expected = ORCHESTRATOR[environments[env].profile]
    types = set(stacks[f"{env}-platform"]["resource"])
    assert expected <= types
    assert not ({"google_compute_instance", "google_composer_environment"} - expected) & types


def test_every_pipeline_has_a_launch_path_and_scans(stacks, environments):
    for env_name, env in environments.items():
        platform = stacks[f"{env_name}-platform"]
        jobs = {b["name"] for b in of_type(platform, "google_cloud_scheduler_job").values()}
        functions = list(of_type(platform, "google_cloudfunctions2_function").values())
        launchable = json.loads(functions[0]["service_config"]["environment_variables"]["PIPELINES_JSON"])
        arrivals = {name for name, config in launchable.items() if config["on_arrival"]}
        scans = {b["data_scan_id"] for b in of_type(platform, "google_dataplex_datascan").values()}
        dags = json.loads(of_type(platform, "google_storage_bucket_object")["dags/pipelines-json"]["content"])
        by_scheduler = env.orchestration.scheduled_by.value == "cloud_scheduler"
        for p in env.pipelines:
            # exactly one launcher per schedule: a Scheduler job, or the DAG (never both)
            assert (env.namer.pipeline_resource(p.name) in jobs) == (p.scheduled and by_scheduler), p.name
            assert (p.name in dags) == p.scheduled and (not p.scheduled or dags[p.name]["launch"] is not by_scheduler), p.name
            assert (p.name in arrivals) == p.on_arrival and p.name in launchable, p.name
            assert {env.namer.pipeline_resource(p.name, "profile"), env.namer.pipeline_resource(p.name, "quality")} <= scans


def test_every_alert_policy_has_a_runbook(stacks):
    for name, stack in stacks.items():
        for path, policy in of_type(stack, "google_monitoring_alert_policy").items():
            assert len(policy["documentation"]["content"]) > 100, f"{name}/{path}"
            assert policy["notification_channels"], f"{name}/{path}"


# ---------------------------------------------------------------- day one on a real project


@pytest.mark.parametrize("env", ENVS)
def test_notebooks_and_staging_live_in_a_kept_bucket(stacks, env):
    """The cluster only stops; its notebooks must outlive it, so they never sit in the expiring temp bucket."""
    platform = stacks[f"{env}-platform"]
    (cluster,) = of_type(platform, "google_dataproc_cluster").values()
    notebooks = next(b for p, b in of_type(platform, "google_storage_bucket").items() if p == "notebooks/bucket")
    assert "notebooks_bucket" in cluster["cluster_config"]["staging_bucket"]
    assert cluster["cluster_config"]["software_config"]["override_properties"]["dataproc:jupyter.notebook.gcs.dir"] == \
        f"gs://{notebooks['name']}/notebooks/jupyter"
    assert notebooks["versioning"]["enabled"] is True and notebooks["lifecycle"]["prevent_destroy"] is True
    assert not any(r["action"]["type"] == "Delete" and "age" in r["condition"] for r in notebooks["lifecycle_rule"]), \
        "live notebooks never expire"


@pytest.mark.parametrize("env", ENVS)
def test_secret_reads_token_exchanges_and_impersonation_are_audited(stacks, env):
    from dataplatform.constructs.audit_logs import AUDITED_SERVICES

    configs = {c["service"]: {t["log_type"] for t in c["audit_log_config"]}
               for c in of_type(stacks[f"{env}-bootstrap"], "google_project_iam_audit_config").values()}
    assert {"storage.googleapis.com", "secretmanager.googleapis.com", "sts.googleapis.com", "iamcredentials.googleapis.com"} <= set(configs)
    assert set(configs) == set(AUDITED_SERVICES)
    assert all(types == {"ADMIN_READ", "DATA_READ", "DATA_WRITE"} for types in configs.values()), configs


@pytest.mark.parametrize("env", ENVS)
def test_hand_filled_secrets_and_service_accounts_live_in_bootstrap(stacks, env):
    platform = stacks[f"{env}-platform"]["resource"]
    assert not {t for t in platform if t.startswith(("google_secret_manager", "google_service_account"))}, \
        "the CI deployer holds no Secret Manager or service-account admin role"
    bootstrap = stacks[f"{env}-bootstrap"]
    connection = only_body(stacks[f"{env}-platform"], "google_cloudbuildv2_connection")
    version = connection["github_config"]["authorizer_credential"]["oauth_token_secret_version"]
    secret_ids = {s["secret_id"] for s in of_type(bootstrap, "google_secret_manager_secret").values()}
    assert version.split("/")[3] in secret_ids and version.split("/")[-1].isdigit(), version


def only_body(stack: dict, rtype: str) -> dict:
    (body,) = of_type(stack, rtype).values()
    return body


@pytest.mark.parametrize("env", ENVS)
def test_runbooks_describe_this_environments_setup(stacks, environments, env):
    config = environments[env]
    policies = of_type(stacks[f"{env}-platform"], "google_monitoring_alert_policy")
    orchestrator = next(p for path, p in policies.items() if "orchestrator" in path)["documentation"]["content"]
    failed = policies["alerts/dataflow-failed"]["documentation"]["content"]
    schedulers = {path: j for path, j in of_type(stacks[f"{env}-platform"], "google_cloud_scheduler_job").items()
                  if path.startswith("schedules/")}  # the ETL's (ML jobs have schedules of their own)
    by_scheduler = config.orchestration.scheduled_by.value == "cloud_scheduler"
    assert ("Cloud Scheduler launches them" in orchestrator) is by_scheduler is bool(schedulers)
    assert ("Cloud Scheduler job" in failed) is by_scheduler
    assert ("launcher function" in orchestrator) is any(p.on_arrival for p in config.pipelines)
    assert f"environments/{env}.yaml" in failed


@pytest.mark.parametrize("env", ENVS)
def test_the_job_failed_runbook_reruns_through_the_launchers_queue_never_by_re_uploading(stacks, environments, env):
    """The re-run it gives is a run request the launcher accepts, in this environment's follow-up queue, which the
    operators group may enqueue in; it warns against a re-upload (a new object generation is loaded again)."""
    import re
    import shlex

    from workloads.launcher.launch_request import REASONS, RUN_REQUEST_SOURCE, RUN_REQUEST_TYPE

    platform = stacks[f"{env}-platform"]
    failed = of_type(platform, "google_monitoring_alert_policy")["alerts/dataflow-failed"]["documentation"]["content"]
    command = shlex.split(re.search(r"`(gcloud tasks create-http-task [^`]+)`", failed).group(1))
    options = [a.split("=", 1) for a in command[3:]]
    headers = dict(v.split(":", 1) for k, v in options if k == "--header")
    flags = {k: v for k, v in options if k != "--header"}
    (queue,) = of_type(platform, "google_cloud_tasks_queue").values()
    assert (flags["--queue"], flags["--location"]) == (queue["name"], queue["location"]) == (
        f"{environments[env].namer.resource('etl-followups')}", environments[env].region)
    assert headers == {"Content-Type": "application/json", "ce-specversion": "1.0", "ce-type": RUN_REQUEST_TYPE,
                       "ce-source": RUN_REQUEST_SOURCE, "ce-id": "rerun-<pipeline>-<n>"}
    body = json.loads(flags["--body-content"])
    assert body == {"pipeline": "<pipeline>", "reason": "backlog"} and body["reason"] in REASONS
    assert "Do not re-upload a file to trigger a run" in failed and "re-upload one file" not in failed
    members = [b["member"] for b in of_type(platform, "google_cloud_tasks_queue_iam_member").values()
               if b["role"] == "roles/cloudtasks.enqueuer"]
    assert f"group:{environments[env].operators_group}" in members


@pytest.mark.parametrize("env", ENVS)
def test_etl_builds_are_tested_and_promoted_as_configured(stacks, environments, env):
    trigger = only_body(stacks[f"{env}-platform"], "google_cloudbuild_trigger")
    assert ("approval_config" in trigger) is (environments[env].cicd.promotion.value == "approval")
    assert {"workloads/etl/**", "workloads/launcher/**", "workloads/tests/**"} <= set(trigger["included_files"])
    assert trigger["service_account"].endswith("-build@" + environments[env].project_id + ".iam.gserviceaccount.com")


def test_the_build_runs_the_tests_before_it_pushes():
    import yaml

    from dataplatform.constructs.etl_build import BUILD_CONFIG

    steps = [s["id"] for s in yaml.safe_load((Path(__file__).resolve().parent.parent / BUILD_CONFIG).read_text())["steps"]]
    assert steps.index("unit-tests") < steps.index("build-image") < steps.index("smoke-test-image") < steps.index("push-image")
