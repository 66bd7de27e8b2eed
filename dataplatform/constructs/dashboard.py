"""One Cloud Monitoring dashboard per environment, and the budget relay that feeds its spend chart.

Tiles (mosaic layout, 48 columns): ETL runs by outcome; arrival-to-load latency (p50/p95); rows
loaded and quarantined; per pipeline and SLO the error budget left; spend against the budget.

Billing data is not a Monitoring metric, so the budget's Pub/Sub notifications (several a day,
with `costAmount` and `budgetAmount`) are relayed by a small workflow into a custom gauge metric.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktn_provider_google.monitoring_dashboard import MonitoringDashboard
from cdktn_provider_google.workflows_workflow import WorkflowsWorkflow
from constructs import Construct

from dataplatform import tfjson
from dataplatform.constructs.events import pubsub_to_workflow
from dataplatform.constructs.service_account import WorkloadIdentityRef
from dataplatform.naming import Namer

COLUMNS = 48
HALF, FULL, QUARTER, HEIGHT = 24, 48, 12, 16


def spend_metric_type(namer: Namer) -> str:
    return f"custom.googleapis.com/{namer.metric('budget_spend')}"


@dataclass(frozen=True)
class BudgetRelaySpec:
    namer: Namer
    project: str
    region: str
    topic_id: str
    identity: WorkloadIdentityRef
    """The relay's account (workload `budget-relay`: created, with its project roles, by the bootstrap stack)."""


class BudgetRelay(Construct):
    """Budget notification (Pub/Sub) -> Eventarc -> workflow -> two gauge points: cost and budget."""

    def __init__(self, scope: Construct, id_: str, spec: BudgetRelaySpec):
        super().__init__(scope, id_)
        namer = spec.namer
        self.identity = spec.identity
        self.metric_type = spend_metric_type(namer)

        def point(kind: str, field: str) -> dict:
            return {"metric": {"type": self.metric_type, "labels": {"kind": kind}},
                    "resource": {"type": "global", "labels": {"project_id": spec.project}},
                    "points": [{"interval": {"endTime": "${time.format(sys.now())}"}, "value": {"doubleValue": f"${{double(msg.{field})}}"}}]}

        source = {"main": {"params": ["event"], "steps": [
            {"decode": {"assign": [{"msg": "${json.decode(base64.decode(event.data.message.data))}"}]}},
            {"write": {"call": "googleapis.monitoring.v3.projects.timeSeries.create", "args": {
                "name": f"projects/{spec.project}", "body": {"timeSeries": [point("cost", "costAmount"), point("budget", "budgetAmount")]}}}},
        ]}}
        self.workflow = WorkflowsWorkflow(self, "workflow", name=namer.resource("budget-relay"), region=spec.region,
                                          description="Writes each budget notification's cost and budget as a gauge metric",
                                          service_account=self.identity.resource_id, call_log_level="LOG_ERRORS_ONLY",
                                          source_contents=tfjson.literal(json.dumps(source, indent=1)))
        pubsub_to_workflow(self, "trigger", name=namer.resource("budget-relay"), location=spec.region, topic_id=spec.topic_id,
                           workflow_id=self.workflow.id, service_account=self.identity.email)


@dataclass(frozen=True)
class DashboardSpec:
    title: str
    metric_ids: dict[str, str]
    slo_names: dict[str, str]  # "<pipeline> <slo>" -> SLO resource name
    spend_metric: str
    budget_amount: int
    currency: str
    labels: dict[str, str]


def _user(metric_id: str) -> str:
    return f'metric.type="logging.googleapis.com/user/{metric_id}" resource.type="global"'


def _chart(title: str, datasets: list[dict], *, plot: str = "LINE", thresholds: list[dict] | None = None) -> dict:
    return {"title": title, "xyChart": {"dataSets": [{"plotType": plot, **d} for d in datasets],
                                        "thresholds": thresholds or [], "yAxis": {"scale": "LINEAR"}}}


def _filter(filter_: str, aligner: str, reducer: str, group_by: list[str], period: str = "3600s") -> dict:
    return {"timeSeriesQuery": {"timeSeriesFilter": {"filter": filter_, "aggregation": {
        "alignmentPeriod": period, "perSeriesAligner": aligner, "crossSeriesReducer": reducer, "groupByFields": group_by}}}}


def _promql(query: str) -> dict:
    return {"timeSeriesQuery": {"prometheusQuery": query}}


def promql_name(metric_id: str, suffix: str = "") -> str:
    """Cloud Monitoring's PromQL name of a log-based metric (first `/` -> `:`, other `.`/`/` -> `_`)."""
    return f"logging_googleapis_com:user_{metric_id}{suffix}"


def dashboard_widgets(spec: DashboardSpec) -> list[dict]:
    m = spec.metric_ids
    widgets = [
        _chart("ETL runs per hour, by pipeline and outcome", [
            _filter(_user(m["runs"]), "ALIGN_SUM", "REDUCE_SUM", ["metric.label.pipeline", "metric.label.outcome"])], plot="STACKED_BAR"),
        _chart("Landing to loaded, seconds (p50, p95)", [
            _filter(_user(m["arrival_to_load"]), "ALIGN_DELTA", reducer, ["metric.label.pipeline"])
            for reducer in ("REDUCE_PERCENTILE_50", "REDUCE_PERCENTILE_95")]),
        _chart("Rows loaded per hour", [_promql(f"sum by (pipeline) (sum_over_time({promql_name(m['loaded_rows'], '_sum')}[1h]))")]),
        _chart("Rows quarantined per hour", [_promql(f"sum by (pipeline) (sum_over_time({promql_name(m['quarantined_rows'], '_sum')}[1h]))")]),
    ]
    for title, name in sorted(spec.slo_names.items()):
        widgets.append({"title": f"{title}: error budget left", "scorecard": {
            "timeSeriesQuery": {"timeSeriesFilter": {"filter": f'select_slo_budget_fraction("{name}")'}},
            "thresholds": [{"value": 0.25, "color": "YELLOW", "direction": "BELOW"}, {"value": 0, "color": "RED", "direction": "BELOW"}]}})
    widgets.append(_chart(f"Spend this month vs budget ({spec.currency})", [
        _filter(f'metric.type="{spec.spend_metric}" resource.type="global"', "ALIGN_MAX", "REDUCE_MAX", ["metric.label.kind"], "21600s")],
        thresholds=[{"value": spec.budget_amount, "label": "budget", "color": "RED"}]))
    return widgets


def mosaic(widgets: list[dict]) -> list[dict]:
    """Tiles left to right, top to bottom: charts half width, scorecards a quarter, the last chart full width."""
    tiles, x, y, row_height = [], 0, 0, 0
    for i, widget in enumerate(widgets):
        width = FULL if i == len(widgets) - 1 else (QUARTER if "scorecard" in widget else HALF)
        height = HEIGHT // 2 if "scorecard" in widget else HEIGHT
        if x + width > COLUMNS:
            x, y, row_height = 0, y + row_height, 0
        tiles.append({"xPos": x, "yPos": y, "width": width, "height": height, "widget": widget})
        x, row_height = x + width, max(row_height, height)
    return tiles


class Dashboard(Construct):
    def __init__(self, scope: Construct, id_: str, spec: DashboardSpec):
        super().__init__(scope, id_)
        body = {"displayName": spec.title, "labels": {k: v for k, v in spec.labels.items()},
                "mosaicLayout": {"columns": COLUMNS, "tiles": mosaic(dashboard_widgets(spec))}}
        self.dashboard = MonitoringDashboard(self, "dashboard", dashboard_json=json.dumps(body, sort_keys=True))
