"""Processing: the limits the ETL's launch design relies on (workloads/launcher, workloads/etl).

* Dataflow runs at most 25 concurrent jobs per project (default quota, config.DATAFLOW_CONCURRENT_JOBS_QUOTA). The launcher starts no
  job while MAX_ACTIVE_JOBS run; up to max_instance_count - 1 other instances may pass the same
  check at the same moment, so MAX_ACTIVE_JOBS + max_instance_count - 1 must stay within 25.
* BigQuery allows 1,500 table modifications per table per day, failed load jobs included. The
  ETL runs at most one load job per run and at most max_loads_per_day per day; 1000 keeps every
  pipeline a third below the limit, for manual loads and reruns.
* One door: Cloud Scheduler asks the launcher for runs through the follow-up queue. A Scheduler
  job calling flexTemplates:launch itself would bypass the one-job-per-pipeline decision and
  the project job budget.
"""

from __future__ import annotations

from dataplatform.config import DATAFLOW_CONCURRENT_JOBS_QUOTA
from dataplatform.guardrails.rule import ERROR, Target, Unverified, as_int, block, computed, get, pipelines_json, request_uri, rule

MAX_LOADS_PER_DAY = 1000


def _launcher_env(t: Target) -> dict | None:
    env = get(t.attrs, "service_config.environment_variables")
    env = env if isinstance(env, dict) else {}
    return env if "PIPELINES_JSON" in env else None


@rule("GR-PRC-001", ERROR, f"The ETL launcher keeps Dataflow within {DATAFLOW_CONCURRENT_JOBS_QUOTA} concurrent jobs per project "
      "(MAX_ACTIVE_JOBS + max_instance_count - 1).",
      "set processing.max_concurrent_jobs (MAX_ACTIVE_JOBS) and processing.launcher_max_instances so that "
      f"max_concurrent_jobs + launcher_max_instances - 1 <= {DATAFLOW_CONCURRENT_JOBS_QUOTA}",
      "google_cloudfunctions2_function")
def launcher_job_budget(t: Target):
    env = _launcher_env(t)
    if env is None:
        return None
    budget, instances = env.get("MAX_ACTIVE_JOBS"), get(t.attrs, "service_config.max_instance_count")
    if budget is None:
        return "MAX_ACTIVE_JOBS is not set: the launcher would launch whatever the project already runs"
    if computed(budget) or computed(instances):
        return Unverified(f"MAX_ACTIVE_JOBS {budget!r} / max_instance_count {instances!r} are computed")
    budget_n, instances_n = as_int(budget), as_int(instances)
    if budget_n is None or budget_n < 1 or instances_n is None:
        return f"MAX_ACTIVE_JOBS {budget!r} and max_instance_count {instances!r} must be positive integers"
    worst = budget_n + instances_n - 1
    if worst > DATAFLOW_CONCURRENT_JOBS_QUOTA:
        return f"MAX_ACTIVE_JOBS {budget_n} + max_instance_count {instances_n} - 1 = {worst} > {DATAFLOW_CONCURRENT_JOBS_QUOTA}"
    return None


@rule("GR-PRC-002", ERROR, f"Each pipeline runs at most {MAX_LOADS_PER_DAY} load jobs per day "
      "(BigQuery: 1,500 table modifications per table per day).",
      f"set the pipeline's max_loads_per_day between 1 and {MAX_LOADS_PER_DAY}", "google_cloudfunctions2_function")
def daily_load_budget(t: Target):
    env = _launcher_env(t)
    if env is None:
        return None
    pipelines = pipelines_json(t)
    if not isinstance(pipelines, dict):
        if computed(pipelines):
            return Unverified("PIPELINES_JSON is computed; cannot check max_loads_per_day")
        return "PIPELINES_JSON is not a JSON object (pipeline: config)"
    problems = []
    for name, config in sorted(pipelines.items()):
        value = block(block(config).get("parameters")).get("max_loads_per_day")
        n = as_int(value)
        if n is None or not 1 <= n <= MAX_LOADS_PER_DAY:
            problems.append(f"PIPELINES_JSON[{name}] max_loads_per_day is {value!r}")
    return "; ".join(problems) or None


@rule("GR-PRC-003", ERROR, "Scheduled ETL runs are requested through the follow-up queue, never launched directly.",
      "point the Scheduler job at the Cloud Tasks queue (ScheduledLaunches does): the launcher decides every launch",
      "google_cloud_scheduler_job")
def scheduler_through_queue(t: Target):
    uri = request_uri(t)
    if "dataflow.googleapis.com" in uri and ("flexTemplates" in uri or "templates" in uri or uri.endswith("/jobs")):
        return f"Cloud Scheduler calls Dataflow directly ({uri})"
    return None


RULES = [launcher_job_budget, daily_load_budget, scheduler_through_queue]
