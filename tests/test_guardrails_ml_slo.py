"""Guardrails of the ML (GR-ML-*) and service-level (GR-SLO-*) families: a failing and a passing
case per rule (merged into tests/test_guardrails.py's catalogue check), and the boundary of every
limit (at the limit passes, one past fails)."""

from __future__ import annotations

import base64
import json

import pytest

from dataplatform.guardrails import RULES_BY_ID
from tests.support import fired, guarded_app, with_

SA = "acme-prod-ml-workbench@acme-data-prod.iam.gserviceaccount.com"
DEFAULT_SA = "123456789012-compute@developer.gserviceaccount.com"
WORKBENCH = {"name": "wb", "location": "europe-west1-b", "gce_setup": {
    "machine_type": "e2-standard-4", "disable_public_ip": True, "service_accounts": [{"email": SA}],
    "metadata": {"idle-timeout-seconds": "3600"}}}
SLO = {"service": "s", "slo_id": "run-success", "goal": 0.99, "rolling_period_days": 28, "request_based_sli": {
    "good_total_ratio": {"total_service_filter": "metric.type=\"a\"", "bad_service_filter": "metric.type=\"b\""}}}
BURN = {"display_name": "fast", "condition_threshold": {
    "filter": 'select_slo_burn_rate("projects/p/services/s/serviceLevelObjectives/o", "3600s")',
    "comparison": "COMPARISON_GT", "threshold_value": 13.44, "duration": "0s"}}
THRESHOLD = {"display_name": "no success", "condition_threshold": {
    "filter": "metric.type=\"x\"", "comparison": "COMPARISON_LT", "threshold_value": 1,
    "aggregations": [{"alignment_period": "90000s", "per_series_aligner": "ALIGN_SUM"}]}}
ABSENT = {"display_name": "gone", "condition_absent": {"filter": "metric.type=\"x\"", "duration": "600s"}}
METRIC = {"name": "acme_dev_etl_arrival_to_load", "filter": "logName=x", "value_extractor": "EXTRACT(jsonPayload.v)",
          "metric_descriptor": {"metric_kind": "DELTA", "value_type": "DISTRIBUTION", "labels": [{"key": "pipeline"}]},
          "label_extractors": {"pipeline": "EXTRACT(jsonPayload.pipeline)"},
          "bucket_options": {"explicit_buckets": {"bounds": [60, 300, 3600]}}}


def dashboard(*tiles, columns=48) -> dict:
    return {"dashboard_json": json.dumps({"displayName": "d", "mosaicLayout": {"columns": columns, "tiles": [
        {"xPos": x, "yPos": y, "width": w, "height": h, "widget": {}} for x, y, w, h in tiles]}})}


def scheduler(uri: str, body: dict | None = None, oauth: bool = True) -> dict:
    target = {"uri": uri, "http_method": "POST", "body": base64.b64encode(json.dumps(body or {}).encode()).decode()}
    if oauth:
        target["oauth_token"] = {"service_account_email": SA}
    return {"name": "j", "schedule": "25 4 * * *", "http_target": target}


PIPELINE_JOBS = "https://europe-west1-aiplatform.googleapis.com/v1/projects/p/locations/europe-west1/pipelineJobs"
TRANSFER = {"display_name": "t", "data_source_id": "scheduled_query", "location": "EU", "schedule": "every day 04:25",
            "service_account_name": SA, "params": {"query": "SELECT 1"}}


CASES: dict[str, tuple] = {
    "GR-ML-001": ("google_workbench_instance", with_(WORKBENCH, "gce_setup.disable_public_ip", False), WORKBENCH),
    "GR-ML-002": ("google_workbench_instance", with_(WORKBENCH, "gce_setup.metadata", {}), WORKBENCH),
    "GR-ML-003": ("google_workbench_instance", with_(WORKBENCH, "gce_setup.service_accounts", None), WORKBENCH),
    "GR-ML-004": ("google_workbench_instance_iam_member", {"name": "wb", "role": "roles/notebooks.runner", "member": "user:ann@acme.example"},
                  {"name": "wb", "role": "roles/notebooks.runner", "member": "group:data-science@acme.example"}),
    "GR-ML-005": ("google_workflows_workflow", {"name": "w", "source_contents": "main: {}"},
                  {"name": "w", "source_contents": "main: {}", "service_account": f"projects/p/serviceAccounts/{SA}"}),
    "GR-ML-006": ("google_cloud_scheduler_job", scheduler(PIPELINE_JOBS, {"templateUri": "gs://a/p.yaml"}),
                  scheduler(PIPELINE_JOBS, {"templateUri": "gs://a/p.yaml", "serviceAccount": SA})),
    "GR-ML-007": ("google_cloud_scheduler_job", scheduler("https://workflowexecutions.googleapis.com/v1/x/executions", oauth=False),
                  scheduler("https://workflowexecutions.googleapis.com/v1/x/executions")),
    "GR-ML-008": ("google_bigquery_data_transfer_config", with_(TRANSFER, "service_account_name", None), TRANSFER),
    "GR-ML-009": ("google_bigquery_data_transfer_config", with_(TRANSFER, "schedule", "every day 04:00"), TRANSFER),
    "GR-SLO-001": ("google_monitoring_slo", with_(SLO, "goal", 1.0), SLO),
    "GR-SLO-002": ("google_monitoring_slo", with_(SLO, "calendar_period", "MONTH"), SLO),
    "GR-SLO-003": ("google_monitoring_slo", with_(SLO, "request_based_sli.good_total_ratio.good_service_filter", "metric.type=\"c\""), SLO),
    "GR-SLO-004": ("google_monitoring_alert_policy", {"conditions": [with_(BURN, "condition_threshold.aggregations",
                                                                           [{"alignment_period": "60s"}])]}, {"conditions": [BURN]}),
    "GR-SLO-005": ("google_monitoring_alert_policy", {"conditions": [with_(THRESHOLD, "condition_threshold.aggregations.0.alignment_period", "90060s")]},
                   {"conditions": [THRESHOLD]}),
    "GR-SLO-006": ("google_monitoring_alert_policy", {"conditions": [with_(ABSENT, "condition_absent.duration", "90s")]}, {"conditions": [ABSENT]}),
    "GR-SLO-007": ("google_logging_metric", with_(METRIC, "value_extractor", None), METRIC),
    "GR-SLO-008": ("google_monitoring_dashboard", dashboard((0, 0, 24, 16), (12, 0, 24, 16)), dashboard((0, 0, 24, 16), (24, 0, 24, 16))),
}


def test_every_ml_and_slo_rule_has_cases():
    assert set(CASES) == {r for r in RULES_BY_ID if r.startswith(("GR-ML-", "GR-SLO-"))}


# ---------------------------------------------------------------- boundaries: at the limit passes, one past fails

@pytest.mark.parametrize("rule_id, rtype, base, path, at_limit, past", [
    ("GR-ML-002", "google_workbench_instance", WORKBENCH, "gce_setup.metadata.idle-timeout-seconds", "600", "540"),
    ("GR-ML-002", "google_workbench_instance", WORKBENCH, "gce_setup.metadata.idle-timeout-seconds", "86400", "86460"),
    ("GR-ML-003", "google_workbench_instance", WORKBENCH, "gce_setup.machine_type", "n2-standard-16", "n2-standard-32"),
    ("GR-SLO-001", "google_monitoring_slo", SLO, "goal", 0.999, 0.9991),
    ("GR-SLO-002", "google_monitoring_slo", SLO, "rolling_period_days", 30, 31),
    ("GR-SLO-002", "google_monitoring_slo", SLO, "rolling_period_days", 1, 0),
])
def test_limits(rule_id, rtype, base, path, at_limit, past):
    assert fired(rule_id, rtype, with_(base, path, at_limit)) == []
    assert fired(rule_id, rtype, with_(base, path, past))


@pytest.mark.parametrize("period, ok", [("60s", True), ("59s", False), ("90000s", True), ("90001s", False)])
def test_alert_alignment_limits(period, ok):
    policy = {"conditions": [with_(THRESHOLD, "condition_threshold.aggregations.0.alignment_period", period)]}
    assert (fired("GR-SLO-005", "google_monitoring_alert_policy", policy) == []) is ok


@pytest.mark.parametrize("duration, ok", [("60s", True), ("120s", True), ("61s", False), ("30s", False)])
def test_absence_duration_whole_minutes(duration, ok):
    policy = {"conditions": [with_(ABSENT, "condition_absent.duration", duration)]}
    assert (fired("GR-SLO-006", "google_monitoring_alert_policy", policy) == []) is ok


@pytest.mark.parametrize("lookback, ok", [("3600s", True), ("60m", True), ("6h", True), ("1d", False), ("1 h", False)])
def test_burn_rate_lookback_units(lookback, ok):
    condition = with_(BURN, "condition_threshold.filter", f'select_slo_burn_rate("projects/p/services/s/serviceLevelObjectives/o", "{lookback}")')
    assert (fired("GR-SLO-004", "google_monitoring_alert_policy", {"conditions": [condition]}) == []) is ok


@pytest.mark.parametrize("tiles, columns, ok", [
    ([(0, 0, 48, 16)], 48, True), ([(1, 0, 48, 16)], 48, False),  # xPos + width at the grid edge, one past
    ([(0, 0, 12, 8)], 49, False), ([(0, 0, 24, 16), (0, 16, 24, 16)], 48, True), ([(0, 0, 24, 16), (0, 15, 24, 16)], 48, False),
])
def test_dashboard_grid(tiles, columns, ok):
    assert (fired("GR-SLO-008", "google_monitoring_dashboard", dashboard(*tiles, columns=columns)) == []) is ok


@pytest.mark.parametrize("change, message", [
    ({"label_extractors": {"pipeline": "x", "outcome": "y"}}, "not declared"),
    ({"bucket_options": {"explicit_buckets": {"bounds": [60, 60, 300]}}}, "strictly increasing"),
    ({"bucket_options": None}, "needs bucket_options"),
    ({"name": "x" * 101}, "not 1-100"),
])
def test_log_metric_problems(change, message):
    attrs = METRIC
    for key, value in change.items():
        attrs = with_(attrs, key, value)
    (found,) = fired("GR-SLO-007", "google_logging_metric", attrs)
    assert message in found.message
    assert fired("GR-SLO-007", "google_logging_metric", {**METRIC, "name": "x" * 100}) == []


@pytest.mark.parametrize("member, ok", [("group:ds@acme.example", True), (f"serviceAccount:{SA}", True),
                                        ("user:ann@acme.example", False), ("domain:acme.example", False), ("allUsers", False)])
def test_notebook_members(member, ok):
    attrs = {"name": "wb", "role": "roles/notebooks.runner", "member": member}
    assert (fired("GR-ML-004", "google_workbench_instance_iam_member", attrs) == []) is ok


@pytest.mark.parametrize("account, ok", [(SA, True), (DEFAULT_SA, False)])
def test_default_compute_sa_is_refused(account, ok):
    assert (fired("GR-ML-006", "google_cloud_scheduler_job", scheduler(PIPELINE_JOBS, {"serviceAccount": account})) == []) is ok
    workbench = with_(WORKBENCH, "gce_setup.service_accounts", [{"email": account}])
    assert (fired("GR-ML-003", "google_workbench_instance", workbench) == []) is ok
    workflow = {"name": "w", "service_account": f"projects/p/serviceAccounts/{account}"}
    assert (fired("GR-ML-005", "google_workflows_workflow", workflow) == []) is ok


@pytest.mark.parametrize("schedule, ok", [("every day 04:01", True), ("every day 04:00", False), ("every mon 23:59", True),
                                          ("every mon,wed 00:00", False)])
def test_scheduled_queries_off_the_hour(schedule, ok):
    assert (fired("GR-ML-009", "google_bigquery_data_transfer_config", with_(TRANSFER, "schedule", schedule)) == []) is ok


def test_rules_ignore_what_they_do_not_govern():
    """A Dataflow launch is not a Vertex pipeline; a non-scheduled-query transfer has no hour rule."""
    dataflow = scheduler("https://dataflow.googleapis.com/v1b3/projects/p/locations/r/flexTemplates:launch", {"launchParameter": {}})
    assert fired("GR-ML-006", "google_cloud_scheduler_job", dataflow) == []
    assert fired("GR-ML-009", "google_bigquery_data_transfer_config", {**TRANSFER, "data_source_id": "google_cloud_storage",
                                                                        "schedule": "every day 04:00"}) == []


def test_rule_breaking_ml_and_slo_resources_refuse_synth(tmp_path):
    """Raw provider resources added to a small guarded stack are refused at synth, by path and rule."""
    from cdktn_provider_google.monitoring_slo import MonitoringSlo
    from cdktn_provider_google.workbench_instance import WorkbenchInstance, WorkbenchInstanceGceSetup
    from cdktn_provider_google.workflows_workflow import WorkflowsWorkflow

    from dataplatform.guardrails import GuardrailError, synth

    app, (stack,) = guarded_app(tmp_path, "s", labels_first=True)
    WorkbenchInstance(stack, "open-notebook", name="nb", location="europe-west1-b",
                      gce_setup=WorkbenchInstanceGceSetup(machine_type="n2-standard-32"))
    WorkflowsWorkflow(stack, "anonymous-workflow", name="wf", region="europe-west1", source_contents="main: {steps: []}")
    MonitoringSlo(stack, "perfect-slo", service="s", slo_id="perfect", goal=1.0, rolling_period_days=90,
                  request_based_sli={"good_total_ratio": {"good_service_filter": "metric.type=\"a\""}})
    with pytest.raises(GuardrailError, match=r"GR-ML-001 \(error\) at s/open-notebook ") as info:
        synth(app)
    message = str(info.value)
    for path, rule_id in [("s/open-notebook", "GR-ML-001"), ("s/open-notebook", "GR-ML-002"), ("s/open-notebook", "GR-ML-003"),
                          ("s/anonymous-workflow", "GR-ML-005"), ("s/perfect-slo", "GR-SLO-001"),
                          ("s/perfect-slo", "GR-SLO-002"), ("s/perfect-slo", "GR-SLO-003")]:
        assert f"{rule_id} (error) at {path} " in message, (path, rule_id)
