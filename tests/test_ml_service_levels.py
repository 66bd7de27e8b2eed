"""The ML and service-level parts of the synthesized environments: exact grants per identity,
the C1 log contract in every filter, SLO math, the workflow and pipeline requests."""

from __future__ import annotations

import base64
import json

import pytest

from dataplatform.config import Profile, load_environments
from tests.support import environment_data, iter_resources, of_type
from workloads.ml import sql

ENVS = {e.name: e for e in load_environments()}
ML_ENVS = [n for n, e in ENVS.items() if e.ml is not None]
VERTEX_ENVS = [n for n in ML_ENVS if ENVS[n].profile is Profile.managed]
# The ML and relay identities' grants are asserted exactly with every other identity's, in
# tests/test_least_privilege.py (one matrix per environment).


@pytest.mark.parametrize("env", ML_ENVS)
def test_predictions_tables_are_partitioned_and_protected(stacks, env, environments):
    tables = {b["table_id"]: b for b in of_type(stacks[f"{env}-platform"], "google_bigquery_table").values()}
    for model in environments[env].ml.models:
        table = tables[model.predictions_table]
        assert table["time_partitioning"] == {"type": "DAY", "field": "predicted_at"}
        assert table["deletion_protection"] is True and table["lifecycle"]["prevent_destroy"] is True
        assert [c["name"] for c in json.loads(table["schema"])] == ["run_id", "predicted_at", "model", model.key, f"predicted_{model.label}"]


@pytest.mark.parametrize("env", ML_ENVS)
def test_predictions_start_from_the_c1_run_summary(stacks, env, environments):
    (sink,) = of_type(stacks[f"{env}-platform"], "google_logging_project_sink").values()
    project = environments[env].project_id
    pipelines = " OR ".join(f'"{p}"' for p in sorted({m.pipeline for m in environments[env].ml.models}))
    assert sink["filter"] == (f'logName="projects/{project}/logs/etl_run_summary" AND jsonPayload.event="etl_run_summary" '
                              f'AND jsonPayload.pipeline=({pipelines}) AND jsonPayload.outcome=("succeeded" OR "partial") '
                              "AND jsonPayload.loaded_rows>0")
    triggers = {p: t for p, t in of_type(stacks[f"{env}-platform"], "google_eventarc_trigger").items() if p.startswith("ml/")}
    (trigger,) = triggers.values()
    assert trigger["destination"]["workflow"].startswith("${google_workflows_workflow.ml_workflow")


@pytest.mark.parametrize("env", ML_ENVS)
def test_workflow_keys_jobs_on_the_run_and_caps_bytes(stacks, env, environments):
    workflow = next(w for p, w in of_type(stacks[f"{env}-platform"], "google_workflows_workflow").items() if p.startswith("ml/"))
    source = json.loads(workflow["source_contents"].replace("$${", "${"))  # Terraform unescapes $${ to ${
    assert "${" not in workflow["source_contents"].replace("$${", "")  # nothing left for Terraform to interpolate
    jobs = source["main"]["steps"][0]["init"]["assign"][0]["jobs"]
    model = environments[env].ml.models[0]
    assert jobs[model.name]["max_bytes"] == str(model.max_gb_billed * 10**9)
    assert ("train" in jobs[model.name]) is (env not in VERTEX_ENVS)  # managed trains in the Vertex AI pipeline
    run = source["main"]["steps"][5]["run"]["for"]["steps"][0]["insert"]
    assert "todo.step" in run["try"]["args"]["body"]["jobReference"]["jobId"] and "run_id" in run["try"]["args"]["body"]["jobReference"]["jobId"]
    assert run["except"]["steps"][0]["known"]["switch"][0]["condition"] == '${default(map.get(e, "code"), 0) == 409}'
    assert [next(iter(step)) for step in source["main"]["steps"]] == [
        "init", "route", "from_schedule", "from_etl_run", "each_model", "run", "done"]


@pytest.mark.parametrize("name", VERTEX_ENVS)
def test_vertex_pipeline_runs_the_same_sql_as_its_own_identity(stacks, environments, name):
    env = environments[name]
    jobs = {p: j for p, j in of_type(stacks[f"{name}-platform"], "google_cloud_scheduler_job").items()
            if "aiplatform" in j["http_target"]["uri"]}
    assert len(jobs) == len(env.ml.models)
    for model in env.ml.models:
        job = jobs[f"ml/pipeline-{model.name}"]
        request = json.loads(base64.b64decode(job["http_target"]["body"]))
        assert request["serviceAccount"] == f"{env.namer.service_account('ml-pipeline')}@{env.project_id}.iam.gserviceaccount.com"
        assert request["templateUri"].startswith(f"gs://{env.namer.bucket('artifacts')}/ml/pipelines/train_and_predict-")
        params = request["runtimeConfig"]["parameterValues"]
        assert params["predict_sql"].startswith(f"MERGE `{env.project_id}.{env.namer.dataset('ml')}.{model.predictions_table}`")
        assert "model_registry = 'VERTEX_AI'" in params["train_sql"] and params["max_bytes_billed"] == model.max_gb_billed * 10**9
        assert job["schedule"] == model.retrain_schedule


@pytest.mark.parametrize("name", ENVS)
def test_service_levels_per_pipeline(stacks, environments, name):
    env = environments[name]
    platform = stacks[f"{name}-platform"]
    services, slos = len(env.pipelines), 2 * len(env.pipelines)
    assert len(of_type(platform, "google_monitoring_custom_service")) == services
    objectives = of_type(platform, "google_monitoring_slo")
    assert len(objectives) == slos and all(s["rolling_period_days"] == 28 for s in objectives.values())
    goals = {g for p in env.pipelines for g in (env.service_level(p).success_goal, env.service_level(p).freshness_goal)}
    assert {s["goal"] for s in objectives.values()} == goals
    alerts = of_type(platform, "google_monitoring_alert_policy")
    burns = {p: a for p, a in alerts.items() if "-burn" in p}
    assert len(burns) == 2 * slos
    for path, alert in burns.items():
        threshold = alert["conditions"][0]["condition_threshold"]
        expected = burn_rate_threshold(0.02, 3600) if "fast" in path else burn_rate_threshold(0.05, 6 * 3600)
        assert threshold["threshold_value"] == round(expected, 2) and "aggregations" not in threshold
        assert alert["severity"] == ("CRITICAL" if "fast" in path else "WARNING")
    no_success = [a for p, a in alerts.items() if "/no-success-" in p]
    assert len(no_success) == len([p for p in env.pipelines if env.service_level(p).alert_after_hours_without_success])
    for alert in no_success:
        cond = alert["conditions"][0]["condition_threshold"]
        assert cond["evaluation_missing_data"] == "EVALUATION_MISSING_DATA_ACTIVE"
        assert int(cond["aggregations"][0]["alignment_period"][:-1]) <= 90000


def test_sla_tier_sets_the_default_goals():
    from dataplatform.config import TIER_GOALS, SlaTier

    assert TIER_GOALS == {SlaTier.high: 0.99, SlaTier.standard: 0.95}


def burn_rate_threshold(budget_share: float, window_s: int) -> float:
    from dataplatform.constructs.service_levels import burn_rate_threshold as threshold  # provider bindings: imported only here

    return threshold(budget_share, window_s)


def test_burn_rate_thresholds():
    assert burn_rate_threshold(0.02, 3600) == pytest.approx(13.44)  # 2 % of 28 days' budget in 1 h
    assert burn_rate_threshold(0.05, 6 * 3600) == pytest.approx(5.6)  # 5 % in 6 h


@pytest.mark.parametrize("name", ENVS)
def test_freshness_cut_is_a_bucket_bound(stacks, name):
    platform = stacks[f"{name}-platform"]
    metric = next(m for m in of_type(platform, "google_logging_metric").values() if m["name"].endswith("arrival_to_load"))
    bounds = metric["bucket_options"]["explicit_buckets"]["bounds"]
    for slo in of_type(platform, "google_monitoring_slo").values():
        cut = slo["request_based_sli"].get("distribution_cut")
        if cut:
            assert cut["range"]["max"] in bounds  # the good count is exact, not interpolated


@pytest.mark.parametrize("env", ENVS)
def test_one_dashboard_shows_every_slo_and_the_budget(stacks, env, environments):
    (dashboard,) = of_type(stacks[f"{env}-platform"], "google_monitoring_dashboard").values()
    body = json.loads(dashboard["dashboard_json"])
    titles = [t["widget"]["title"] for t in body["mosaicLayout"]["tiles"]]
    slo_tiles = [t for t in titles if t.endswith("error budget left")]
    assert len(slo_tiles) == len(of_type(stacks[f"{env}-platform"], "google_monitoring_slo"))
    assert titles[0].startswith("ETL runs") and any("Rows quarantined" in t for t in titles)
    spend = body["mosaicLayout"]["tiles"][-1]["widget"]["xyChart"]
    assert spend["thresholds"][0]["value"] == environments[env].budget.amount


@pytest.mark.parametrize("name", [n for n in ML_ENVS if n not in VERTEX_ENVS])
def test_sql_module_is_what_synth_ships(stacks, environments, name):
    """The lean workflow runs exactly workloads/ml/sql.py's statements (one source for both profiles)."""
    env = environments[name]
    workflow = next(w for p, w in of_type(stacks[f"{name}-platform"], "google_workflows_workflow").items() if p.startswith("ml/"))
    jobs = json.loads(workflow["source_contents"].replace("$${", "${"))["main"]["steps"][0]["init"]["assign"][0]["jobs"]
    for model in env.ml.models:
        target = f"{env.project_id}.{env.namer.dataset('ml')}.{model.predictions_table}"
        assert jobs[model.name]["predict"].startswith(f"MERGE `{target}` AS target")
        assert f"@{sql.RUN_ID_PARAMETER} AS run_id" in jobs[model.name]["predict"]


def test_ml_is_optional(tmp_path):
    """An environment without `ml:` synthesizes no ML resource; its service levels stay."""
    from dataplatform.config import parse_environment
    from dataplatform.guardrails import synth
    from main import build_app

    name = ML_ENVS[0]
    data = environment_data(name)
    del data["ml"]
    env = parse_environment(data, f"{name}.yaml", expected_name=name)
    app = build_app(tmp_path / "out", [env])
    synth(app)
    stack = json.loads((tmp_path / "out" / "stacks" / f"{name}-platform" / "cdk.tf.json").read_text())
    paths = [path for _, path, _ in iter_resources(stack)]
    assert not [p for p in paths if p.startswith("ml/") or "ml-jobs" in p]
    assert len(of_type(stack, "google_monitoring_slo")) == 2 * len(env.pipelines)
    assert len(of_type(stack, "google_workflows_workflow")) == 1  # the budget relay
    bootstrap = json.loads((tmp_path / "out" / "stacks" / f"{name}-bootstrap" / "cdk.tf.json").read_text())
    accounts = {b["account_id"] for b in of_type(bootstrap, "google_service_account").values()}
    assert not [a for a in accounts if "-ml-" in a], accounts  # no ML accounts either
