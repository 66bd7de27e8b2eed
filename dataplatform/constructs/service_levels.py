"""Service levels per pipeline, measured from the ETL's own log events (contract C1).

Log-based metrics (one set per environment, labelled by pipeline):
- `etl_runs`: one count per `etl_run_summary`, labels `pipeline`, `outcome` (succeeded | partial | failed);
- `etl_arrival_to_load`: distribution of `etl_file_loaded.arrival_to_load_seconds`;
- `etl_loaded_rows`, `etl_quarantined_rows`: distributions of the run summary's row counts (dashboard).

Per pipeline, a Cloud Monitoring custom service with two request-based SLOs over 28 rolling days:
- run success: failed runs / all runs (a `partial` run committed its work: it counts as good);
- freshness: files loaded within `freshness_minutes` of landing / files loaded (a distribution cut
  whose upper bound is one of the metric's bucket bounds, so the count is exact).
Each SLO gets a fast-burn (1 h, pages) and a slow-burn (6 h, ticket) alert, and each pipeline a
"no successful run for N hours" alert, which also catches runs that die before logging.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktn_provider_google.logging_metric import LoggingMetric, LoggingMetricMetricDescriptorLabels
from cdktn_provider_google.monitoring_custom_service import MonitoringCustomService
from cdktn_provider_google.monitoring_slo import MonitoringSlo
from constructs import Construct

from dataplatform.constructs.observability import AlertSpec, Alerts, burn_rate, fewer_than
from workloads.etl.reporting import FILE_EVENT, FILE_LOG_NAME, LOG_NAME, OUTCOMES, SUMMARY_EVENT  # C1, stdlib-only

LOADED_OUTCOMES = tuple(o for o in OUTCOMES if o != "failed")  # C1: a partial run committed some files too
COMPLIANCE_DAYS = 28
# (key, lookback, share of the 28-day error budget that may burn in it, severity): SRE workbook pairs
BURN_WINDOWS = (("fast", 3600, 0.02, "CRITICAL"), ("slow", 6 * 3600, 0.05, "WARNING"))
LATENCY_BOUNDS = (60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 10800, 14400, 21600, 28800, 43200,
                  64800, 86400, 90000, 129600, 172800, 259200, 604800)


def burn_rate_threshold(budget_share: float, lookback_seconds: int, days: int = COMPLIANCE_DAYS) -> float:
    """Burn rate at which `budget_share` of the period's error budget is spent within the lookback."""
    return budget_share * days * 86400 / lookback_seconds


@dataclass(frozen=True)
class PipelineLevels:
    pipeline: str
    service_id: str
    success_goal: float
    freshness_goal: float
    freshness_seconds: int
    alert_after_hours_without_success: int


@dataclass(frozen=True)
class ServiceLevelsSpec:
    project: str
    env: str
    metric_ids: dict[str, str]  # runs, arrival_to_load, loaded_rows, quarantined_rows -> log-based metric id
    pipelines: tuple[PipelineLevels, ...]


def _log(project: str, log_name: str, event: str) -> str:
    return f'logName="projects/{project}/logs/{log_name}" AND jsonPayload.event="{event}"'


def run_summary_filter(project: str) -> str:
    """The ETL's `etl_run_summary` entries (C1), one per run."""
    return _log(project, LOG_NAME, SUMMARY_EVENT)


def file_loaded_filter(project: str) -> str:
    """The ETL's `etl_file_loaded` entries (C1), one per committed file."""
    return _log(project, FILE_LOG_NAME, FILE_EVENT)


def _metric_filter(metric_id: str, pipeline: str, extra: str = "") -> str:
    return (f'metric.type="logging.googleapis.com/user/{metric_id}" AND resource.type="global" '
            f'AND metric.label.pipeline="{pipeline}"{extra}')


class ServiceLevels(Construct):
    def __init__(self, scope: Construct, id_: str, spec: ServiceLevelsSpec, *, alerts: Alerts):
        super().__init__(scope, id_)
        ids, project = spec.metric_ids, spec.project
        pipeline_label = LoggingMetricMetricDescriptorLabels(key="pipeline", value_type="STRING", description="pipeline name")
        self.metrics = {
            "runs": LoggingMetric(
                self, "runs", name=ids["runs"], filter=run_summary_filter(project),
                description="ETL runs by pipeline and outcome (etl_run_summary)",
                metric_descriptor={"metric_kind": "DELTA", "value_type": "INT64", "unit": "1", "labels": [
                    pipeline_label, LoggingMetricMetricDescriptorLabels(key="outcome", value_type="STRING",
                                                                         description=" | ".join(OUTCOMES))]},
                label_extractors={"pipeline": "EXTRACT(jsonPayload.pipeline)", "outcome": "EXTRACT(jsonPayload.outcome)"}),
            "arrival_to_load": LoggingMetric(
                self, "arrival-to-load", name=ids["arrival_to_load"], filter=file_loaded_filter(project),
                description="Seconds from a file landing to its rows being loaded (etl_file_loaded)",
                metric_descriptor={"metric_kind": "DELTA", "value_type": "DISTRIBUTION", "unit": "s", "labels": [pipeline_label]},
                value_extractor="EXTRACT(jsonPayload.arrival_to_load_seconds)",
                label_extractors={"pipeline": "EXTRACT(jsonPayload.pipeline)"},
                bucket_options={"explicit_buckets": {"bounds": sorted({*LATENCY_BOUNDS, *(p.freshness_seconds for p in spec.pipelines)})}}),
        }
        for key, field in (("loaded_rows", "loaded_rows"), ("quarantined_rows", "quarantined_rows")):
            self.metrics[key] = LoggingMetric(
                self, key.replace("_", "-"), name=ids[key], filter=run_summary_filter(project),
                description=f"Rows per ETL run: {field} (etl_run_summary)",
                metric_descriptor={"metric_kind": "DELTA", "value_type": "DISTRIBUTION", "unit": "1", "labels": [pipeline_label]},
                value_extractor=f"EXTRACT(jsonPayload.{field})", label_extractors={"pipeline": "EXTRACT(jsonPayload.pipeline)"},
                bucket_options={"exponential_buckets": {"num_finite_buckets": 20, "growth_factor": 4, "scale": 1}})

        self.services: dict[str, MonitoringCustomService] = {}
        self.slos: dict[tuple[str, str], MonitoringSlo] = {}
        for p in spec.pipelines:
            self._pipeline(spec, p, alerts)

    def _pipeline(self, spec: ServiceLevelsSpec, p: PipelineLevels, alerts: Alerts) -> None:
        ids = spec.metric_ids
        service = MonitoringCustomService(self, f"service-{p.pipeline}", service_id=p.service_id,
                                          display_name=f"ETL {p.pipeline} ({spec.env})")
        self.services[p.pipeline] = service
        runs = _metric_filter(ids["runs"], p.pipeline)
        slos = {
            "run-success": (f"{p.success_goal:.1%} of {p.pipeline} runs do not fail", p.success_goal, {"good_total_ratio": {
                "total_service_filter": runs, "bad_service_filter": runs + ' AND metric.label.outcome="failed"'}}),
            "freshness": (f"{p.freshness_goal:.1%} of {p.pipeline} files load within {p.freshness_seconds // 60} min of landing",
                          p.freshness_goal, {"distribution_cut": {
                              "distribution_filter": _metric_filter(ids["arrival_to_load"], p.pipeline),
                              "range": {"min": 0, "max": p.freshness_seconds}}}),
        }
        for slo_id, (title, goal, sli) in slos.items():
            slo = MonitoringSlo(self, f"{p.pipeline}-{slo_id}", service=service.service_id, slo_id=slo_id, display_name=title,
                                goal=goal, rolling_period_days=COMPLIANCE_DAYS, request_based_sli=sli)
            self.slos[(p.pipeline, slo_id)] = slo
            for window, lookback, share, severity in BURN_WINDOWS:
                rate = burn_rate_threshold(share, lookback)
                alerts.add(AlertSpec(
                    f"slo-{p.pipeline}-{slo_id}-{window}-burn",
                    f"ETL {p.pipeline}: {slo_id} budget burning {rate:.1f}x ({window}, {lookback // 3600} h)",
                    RUNBOOK_BURN[slo_id].format(pipeline=p.pipeline, share=f"{share:.0%}", hours=lookback // 3600, goal=f"{goal:.1%}"),
                    burn_rate(slo.name, lookback_seconds=lookback, rate=rate), severity=severity))
        if p.alert_after_hours_without_success:
            hours = p.alert_after_hours_without_success
            loaded = ", ".join(f'"{o}"' for o in LOADED_OUTCOMES)
            good = runs + f" AND metric.label.outcome=one_of({loaded})"
            alerts.add(AlertSpec(f"no-success-{p.pipeline}", f"ETL {p.pipeline}: no successful run for {hours} h",
                                 RUNBOOK_NO_SUCCESS.format(pipeline=p.pipeline, hours=hours),
                                 fewer_than(good, 1, window_seconds=hours * 3600)))


RUNBOOK_BURN = {
    "run-success": """
ETL runs of `{pipeline}` fail fast enough to spend {share} of the 28-day error budget within {hours} h
(objective: {goal} of runs do not fail). 1. Dataflow console, label `etl-pipeline={pipeline}`: read the
first error of the failed jobs; `etl_run_summary` entries with `outcome="failed"` name the run_id.
2. Data or schema: fix the source or `environments/<env>.yaml`. Platform (quota, permission, template):
fix and re-run; the checkpoint did not advance, so nothing is lost. 3. Fast burn pages: act now;
slow burn is a ticket for today.
""",
    "freshness": """
Files of `{pipeline}` take longer than the freshness threshold from landing to loaded, fast enough to
spend {share} of the 28-day budget within {hours} h (objective: {goal} of files on time). Check for a
backlog (`backlog_files` in `etl_run_summary`), runs at their `max_files_per_run`/`max_workers` bound,
a stopped launcher or scheduler, or slow Dataflow start-up; raise the run bounds or workers in the
environment file if the load grew.
""",
}
RUNBOOK_NO_SUCCESS = """
No run of `{pipeline}` succeeded (or partially succeeded) for {hours} h: either nothing was delivered,
or runs fail or die before they log. 1. Landing folder `{pipeline}/`: did files arrive? If not, ask the
source system. 2. If they did: launcher function errors, Cloud Scheduler job or Airflow DAG state,
Dataflow jobs of label `etl-pipeline={pipeline}`. 3. Re-run once fixed: pending files are picked up.
"""
