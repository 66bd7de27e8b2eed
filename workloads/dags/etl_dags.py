"""One Airflow DAG per scheduled ETL pipeline, generated from the pipelines.json deployed next to this file.

pipelines.json (written by the platform stack)::

    {"orders": {"schedule": "0 3 * * *", "launch": true, "project": "my-project", "region": "europe-west1",
                "output_table": "my-project:warehouse.orders",
                "followup_queue": "projects/my-project/locations/europe-west1/queues/acme-prod-etl-followups"}}

Written for Airflow 3 (parse-tested with it) and kept importable on Airflow 2.10 by using only
long-standing operator arguments.

Each DAG ``etl_<pipeline>``: ask the launcher for a run (a task on the follow-up queue, the
same request Cloud Scheduler makes; the launcher launches ``etl-<pipeline>`` unless a job of
the pipeline is already active, so a scheduled run never overlaps another run of the pipeline)
-> wait for the first job of the pipeline created after the request to finish (sensor in
reschedule mode, so no worker slot is held) -> check that the table received rows in the
partitions ingested since the start of the data interval. The scheduled run is a safety net for
the event-driven launches: it loads whatever is still pending and turns "no data arrived" into a
failed check someone sees.

With ``"launch": false`` (the platform's ``scheduled_by: cloud_scheduler`` mode, where Cloud
Scheduler requests the runs) the DAG only runs the row check, so a cron never requests twice.

A missing or malformed pipelines.json raises at import, so it shows up as a DAG import error
instead of silently producing no DAGs.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from airflow.providers.google.cloud.operators.bigquery import BigQueryCheckOperator

import launch_request  # deployed next to this file

try:  # Airflow 3
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.providers.standard.sensors.python import PythonSensor
    from airflow.sdk import DAG, CronDataIntervalTimetable
except ImportError:  # Airflow 2.x (composer-3-airflow-2 images, the lean profile's VM)
    from airflow import DAG
    from airflow.operators.python import PythonOperator
    from airflow.sensors.python import PythonSensor
    from airflow.timetables.interval import CronDataIntervalTimetable

CONFIG_PATH = Path(__file__).with_name("pipelines.json")
DAG_KEYS = ("schedule", "project", "region", "output_table", "followup_queue")
MAX_JOB_PAGES = 5


def table_sql_name(output_table: str) -> str:
    """``project:dataset.table`` -> ```project.dataset.table``` for Standard SQL."""
    project, _, rest = output_table.partition(":")
    return f"`{project}.{rest}`"


def rows_loaded_sql(output_table: str) -> str:
    # Ingestion-time partitioned: _PARTITIONTIME is the (day) partition the load went into.
    return (
        f"SELECT COUNT(*) > 0 FROM {table_sql_name(output_table)} "
        "WHERE _PARTITIONTIME >= TIMESTAMP_TRUNC(TIMESTAMP('{{ data_interval_start }}'), DAY)"
    )


def request_run(pipeline: str, queue: str) -> str:
    """Create the run request on the follow-up queue; returns when it was made (RFC 3339)."""
    requested_at = dt.datetime.now(dt.timezone.utc)
    launch_request.create_task(launch_request.authorized_session().post, queue, launch_request.run_request(pipeline, "schedule", requested_at),
                               timeout=60)
    return requested_at.isoformat()


def run_finished(pipeline: str, project: str, region: str, requested_at: str) -> bool:
    """Sensor: has the first job of the pipeline created after the request finished (raises if it failed)?"""
    since = launch_request.parse_time(requested_at)
    session = launch_request.authorized_session()

    def page(token: str | None) -> dict[str, Any]:
        response = session.get(launch_request.jobs_url(project, region, token), timeout=60)
        if response.status_code >= 400:
            raise RuntimeError(f"listing Dataflow jobs answered {response.status_code}: {response.text[:500]}")
        return response.json()

    return bool(launch_request.run_outcome(launch_request.list_jobs(page, MAX_JOB_PAGES), pipeline, region, since))


def build_dag(pipeline: str, config: dict) -> DAG:
    missing = [key for key in DAG_KEYS if not config.get(key)]
    if missing:
        raise ValueError(f"pipelines.json: pipeline {pipeline!r} lacks {missing}")
    launches = config.get("launch", True)
    # Validated here, at parse time (a bad queue path is an import error, not a 3 a.m. failure).
    launch_request.create_task_request(config["followup_queue"], launch_request.run_request(pipeline, "schedule"))
    with DAG(
        dag_id=f"etl_{pipeline.replace('-', '_')}",
        description=(f"Scheduled load of the {pipeline} landing files into BigQuery" if launches
                     else f"Check that {pipeline} rows arrived (Cloud Scheduler requests the loads)"),
        # Explicit data intervals (Airflow 3 defaults cron strings to trigger timetables without
        # intervals); the row check below relies on data_interval_start.
        schedule=CronDataIntervalTimetable(config["schedule"], timezone="UTC"),
        start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
        catchup=False,
        max_active_runs=1,
        default_args={"retries": 1, "retry_delay": dt.timedelta(minutes=5)},
        tags=["etl", pipeline],
    ) as dag:
        check = BigQueryCheckOperator(
            # No project_id: older Google providers lack it; the query job runs in the
            # connection's (= the environment's) project, which reads the table by full name.
            task_id="check_rows_loaded",
            sql=rows_loaded_sql(config["output_table"]),
            use_legacy_sql=False,
        )
        if not launches:
            return dag
        request = PythonOperator(
            task_id="request_run",
            python_callable=request_run,
            op_kwargs={"pipeline": pipeline, "queue": config["followup_queue"]},
        )
        wait = PythonSensor(
            task_id="wait_for_run",
            python_callable=run_finished,
            op_kwargs={"pipeline": pipeline, "project": config["project"], "region": config["region"],
                       "requested_at": "{{ task_instance.xcom_pull(task_ids='request_run') }}"},
            mode="reschedule",
            poke_interval=60,
            timeout=3 * 60 * 60,
        )
        request >> wait >> check
    return dag


def load_pipelines(path: Path = CONFIG_PATH) -> dict:
    pipelines = json.loads(path.read_text())
    if not isinstance(pipelines, dict) or not pipelines:
        raise ValueError(f"{path} must be a non-empty JSON object of pipeline name -> config")
    return pipelines


for _name, _config in load_pipelines().items():
    _dag = build_dag(_name, _config)
    globals()[_dag.dag_id] = _dag
