"""The ML and service-level parts of the synthesized environments: exact grants per identity,
the C1 log contract in every filter, SLO math, the workflow and pipeline requests."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from dataplatform import tfjson
from dataplatform.constructs.service_levels import burn_rate_threshold
from tests.support import iter_resources, of_type
from workloads.ml import sql

ML_SAS = ("ml-runner", "ml-trigger", "ml-pipeline", "ml-workbench", "budget-relay")


def project_and_resource_grants(stack: dict) -> set:
    found = set()
    for rtype, path, body in iter_resources(stack):
        if not rtype.endswith("_iam_member") or not path.startswith(("ml/", "budget-relay/", "artifacts/iam-storage-objectviewer-ml",
                                                                       "temp/iam-storage-objectuser-ml")):
            continue
        member = body["member"]
        who = ("sink" if "writer_identity" in member else "data-scientists" if member.startswith("group:")
               else "ci-deployer" if "ci-deploy@" in member else next(k for k in ML_SAS if f"{k}_sa_" in member))
        if rtype == "google_project_iam_member":
            target = "project"
        elif rtype == "google_service_account_iam_member":
            target = f"sa:{path.split('/')[1]}"
        else:
            target = rtype.removeprefix("google_").removesuffix("_iam_member")
        found.add((target, body["role"], who))
    return found


EXPECTED = {
    "dev": {
        ("project", "roles/bigquery.jobUser", "ml-runner"),
        ("bigquery_dataset", "roles/bigquery.dataEditor", "ml-runner"),  # the ML dataset only
        ("bigquery_table", "roles/bigquery.dataViewer", "ml-runner"),  # the source table only
        ("project", "roles/workflows.invoker", "ml-trigger"),
        ("project", "roles/eventarc.eventReceiver", "ml-trigger"),
        ("pubsub_topic", "roles/pubsub.publisher", "sink"),
        ("project", "roles/monitoring.metricWriter", "budget-relay"),
        ("project", "roles/workflows.invoker", "budget-relay"),
        ("project", "roles/eventarc.eventReceiver", "budget-relay"),
        ("sa:ml-runner", "roles/iam.serviceAccountUser", "ci-deployer"),
        ("sa:ml-trigger", "roles/iam.serviceAccountUser", "ci-deployer"),
        ("sa:budget-relay", "roles/iam.serviceAccountUser", "ci-deployer"),
    },
}
EXPECTED["prod"] = EXPECTED["dev"] | {
    ("project", "roles/aiplatform.user", "ml-pipeline"),
    ("project", "roles/bigquery.jobUser", "ml-pipeline"),
    ("bigquery_dataset", "roles/bigquery.dataEditor", "ml-pipeline"),
    ("bigquery_table", "roles/bigquery.dataViewer", "ml-pipeline"),
    ("storage_bucket", "roles/storage.objectUser", "ml-pipeline"),  # temp: pipeline root
    ("storage_bucket", "roles/storage.objectViewer", "ml-pipeline"),  # artifacts: the compiled spec
    ("sa:ml-pipeline", "roles/iam.serviceAccountUser", "ci-deployer"),
    ("sa:ml-pipeline", "roles/iam.serviceAccountUser", "ml-pipeline"),  # Scheduler calls as it, the run runs as it
    ("project", "roles/bigquery.jobUser", "ml-workbench"),
    ("bigquery_dataset", "roles/bigquery.dataEditor", "ml-workbench"),
    ("bigquery_table", "roles/bigquery.dataViewer", "ml-workbench"),
    ("sa:ml-workbench", "roles/iam.serviceAccountUser", "ci-deployer"),
    ("sa:ml-workbench", "roles/iam.serviceAccountUser", "data-scientists"),
    ("workbench_instance", "roles/notebooks.runner", "data-scientists"),
}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_ml_and_relay_grants_exactly(stacks, env):
    assert project_and_resource_grants(stacks[f"{env}-platform"]) == EXPECTED[env]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_project_grant_of_ours_has_a_reason(stacks, env):
    ours = [r for r in tfjson.resources(stacks[f"{env}-platform"])
            if r.type == "google_project_iam_member" and r.relative_path.startswith(("ml/", "budget-relay/"))]
    assert len(ours) == {"dev": 6, "prod": 9}[env]
    for r in ours:
        assert len(r.comments["project_scope_reason"]) > 20, r.path


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_predictions_tables_are_partitioned_and_protected(stacks, env, environments):
    tables = {b["table_id"]: b for b in of_type(stacks[f"{env}-platform"], "google_bigquery_table").values()}
    for model in environments[env].ml.models:
        table = tables[model.predictions_table]
        assert table["time_partitioning"] == {"type": "DAY", "field": "predicted_at"}
        assert table["deletion_protection"] is True and table["lifecycle"]["prevent_destroy"] is True
        assert [c["name"] for c in json.loads(table["schema"])] == ["run_id", "predicted_at", "model", model.key, f"predicted_{model.label}"]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_predictions_start_from_the_c1_run_summary(stacks, env, environments):
    (sink,) = of_type(stacks[f"{env}-platform"], "google_logging_project_sink").values()
    project = environments[env].project_id
    assert sink["filter"] == (f'logName="projects/{project}/logs/etl_run_summary" AND jsonPayload.event="etl_run_summary" '
                              'AND jsonPayload.pipeline=("orders") AND jsonPayload.outcome=("succeeded" OR "partial") '
                              "AND jsonPayload.loaded_rows>0")
    triggers = {p: t for p, t in of_type(stacks[f"{env}-platform"], "google_eventarc_trigger").items() if p.startswith("ml/")}
    (trigger,) = triggers.values()
    assert trigger["destination"]["workflow"].startswith("${google_workflows_workflow.ml_workflow")


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_workflow_keys_jobs_on_the_run_and_caps_bytes(stacks, env, environments):
    workflow = next(w for p, w in of_type(stacks[f"{env}-platform"], "google_workflows_workflow").items() if p.startswith("ml/"))
    source = json.loads(workflow["source_contents"].replace("$${", "${"))  # Terraform unescapes $${ to ${
    assert "${" not in workflow["source_contents"].replace("$${", "")  # nothing left for Terraform to interpolate
    jobs = source["main"]["steps"][0]["init"]["assign"][0]["jobs"]
    model = environments[env].ml.models[0]
    assert jobs[model.name]["max_bytes"] == str(model.max_gb_billed * 10**9)
    assert ("train" in jobs[model.name]) is (env == "dev")  # managed trains in the Vertex AI pipeline
    run = source["main"]["steps"][5]["run"]["for"]["steps"][0]["insert"]
    assert "todo.step" in run["try"]["args"]["body"]["jobReference"]["jobId"] and "run_id" in run["try"]["args"]["body"]["jobReference"]["jobId"]
    assert run["except"]["steps"][0]["known"]["switch"][0]["condition"] == '${default(map.get(e, "code"), 0) == 409}'
    assert [next(iter(step)) for step in source["main"]["steps"]] == [
        "init", "route", "from_schedule", "from_etl_run", "each_model", "run", "done"]


def test_vertex_pipeline_runs_the_same_sql_as_its_own_identity(stacks, environments):
    env = environments["prod"]
    jobs = {p: j for p, j in of_type(stacks["prod-platform"], "google_cloud_scheduler_job").items() if "aiplatform" in j["http_target"]["uri"]}
    (job,) = jobs.values()
    request = json.loads(base64.b64decode(job["http_target"]["body"]))
    assert request["serviceAccount"] == f"acme-prod-ml-pipeline@{env.project_id}.iam.gserviceaccount.com"
    assert request["templateUri"].startswith("gs://acme-prod-artifacts/ml/pipelines/train_and_predict-")
    params = request["runtimeConfig"]["parameterValues"]
    assert params["predict_sql"].startswith("MERGE `acme-data-prod.acme_prod_ml.order_amount_predictions`")
    assert "model_registry = 'VERTEX_AI'" in params["train_sql"] and params["max_bytes_billed"] == 100 * 10**9
    assert job["schedule"] == env.ml.models[0].retrain_schedule


@pytest.mark.parametrize("env, services, slos", [("dev", 1, 2), ("prod", 2, 4)])
def test_service_levels_per_pipeline(stacks, environments, env, services, slos):
    platform = stacks[f"{env}-platform"]
    assert len(of_type(platform, "google_monitoring_custom_service")) == services
    objectives = of_type(platform, "google_monitoring_slo")
    assert len(objectives) == slos and all(s["rolling_period_days"] == 28 for s in objectives.values())
    tier_goal = {"dev": 0.95, "prod": 0.99}[env]
    assert {s["goal"] for s in objectives.values()} == {tier_goal}
    alerts = of_type(platform, "google_monitoring_alert_policy")
    burns = {p: a for p, a in alerts.items() if "-burn" in p}
    assert len(burns) == 2 * slos
    for path, alert in burns.items():
        threshold = alert["conditions"][0]["condition_threshold"]
        expected = burn_rate_threshold(0.02, 3600) if "fast" in path else burn_rate_threshold(0.05, 6 * 3600)
        assert threshold["threshold_value"] == round(expected, 2) and "aggregations" not in threshold
        assert alert["severity"] == ("CRITICAL" if "fast" in path else "WARNING")
    no_success = [a for p, a in alerts.items() if "/no-success-" in p]
    assert len(no_success) == services
    for alert in no_success:
        cond = alert["conditions"][0]["condition_threshold"]
        assert cond["evaluation_missing_data"] == "EVALUATION_MISSING_DATA_ACTIVE"
        assert int(cond["aggregations"][0]["alignment_period"][:-1]) <= 90000


def test_burn_rate_thresholds():
    assert burn_rate_threshold(0.02, 3600) == pytest.approx(13.44)  # 2 % of 28 days' budget in 1 h
    assert burn_rate_threshold(0.05, 6 * 3600) == pytest.approx(5.6)  # 5 % in 6 h


def test_freshness_cut_is_a_bucket_bound(stacks):
    platform = stacks["prod-platform"]
    metric = next(m for m in of_type(platform, "google_logging_metric").values() if m["name"].endswith("arrival_to_load"))
    bounds = metric["bucket_options"]["explicit_buckets"]["bounds"]
    for slo in of_type(platform, "google_monitoring_slo").values():
        cut = slo["request_based_sli"].get("distribution_cut")
        if cut:
            assert cut["range"]["max"] in bounds  # the good count is exact, not interpolated


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_one_dashboard_shows_every_slo_and_the_budget(stacks, env, environments):
    (dashboard,) = of_type(stacks[f"{env}-platform"], "google_monitoring_dashboard").values()
    body = json.loads(dashboard["dashboard_json"])
    titles = [t["widget"]["title"] for t in body["mosaicLayout"]["tiles"]]
    slo_tiles = [t for t in titles if t.endswith("error budget left")]
    assert len(slo_tiles) == len(of_type(stacks[f"{env}-platform"], "google_monitoring_slo"))
    assert titles[0].startswith("ETL runs") and any("Rows quarantined" in t for t in titles)
    spend = body["mosaicLayout"]["tiles"][-1]["widget"]["xyChart"]
    assert spend["thresholds"][0]["value"] == environments[env].budget.amount


def test_sql_module_is_what_synth_ships(stacks, environments):
    """The lean workflow runs exactly workloads/ml/sql.py's statements (one source for both profiles)."""
    workflow = next(w for p, w in of_type(stacks["dev-platform"], "google_workflows_workflow").items() if p.startswith("ml/"))
    jobs = json.loads(workflow["source_contents"].replace("$${", "${"))["main"]["steps"][0]["init"]["assign"][0]["jobs"]
    model = environments["dev"].ml.models[0]
    assert jobs[model.name]["predict"].startswith(f"MERGE `acme-data-dev.acme_dev_ml.{model.predictions_table}` AS target")
    assert f"@{sql.RUN_ID_PARAMETER} AS run_id" in jobs[model.name]["predict"]


def test_ml_is_optional(tmp_path):
    """An environment without `ml:` synthesizes no ML resource; its service levels stay."""
    import yaml

    from dataplatform.config import parse_environment
    from dataplatform.guardrails import synth
    from main import build_app

    data = yaml.safe_load((Path(__file__).resolve().parent.parent / "environments" / "dev.yaml").read_text())
    del data["ml"]
    app = build_app(tmp_path / "out", [parse_environment(data, "dev.yaml", expected_name="dev")])
    synth(app)
    stack = json.loads((tmp_path / "out" / "stacks" / "dev-platform" / "cdk.tf.json").read_text())
    paths = [path for _, path, _ in iter_resources(stack)]
    assert not [p for p in paths if p.startswith("ml/") or "ml-jobs" in p]
    assert len(of_type(stack, "google_monitoring_slo")) == 2 and len(of_type(stack, "google_workflows_workflow")) == 1
