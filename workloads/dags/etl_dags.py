"""One Airflow DAG per ETL pipeline, generated from the pipelines.json deployed next to this file.

pipelines.json has the shape of the launcher's PIPELINES_JSON, with four more keys per pipeline::

    {"orders": {"parameters": {...ETL parameters...}, "environment": {...},
                "schedule": "0 3 * * *", "template_spec_uri": "gs://.../templates/etl.json",
                "project": "my-project", "region": "europe-west1"}}

Written for Airflow 3 (parse-tested with it) and kept importable on Airflow 2.10 by using only
long-standing operator arguments.  Needs the Google *and* Apache Beam providers: the Google
provider's Dataflow hook refuses to import without the latter.

Each DAG ``etl_<pipeline>``: launch the Flex Template (the same request the launcher and Cloud
Scheduler send, from launch_request.py, deployed alongside) -> wait for the Dataflow job to
finish (sensor in reschedule mode, so no worker slot is held) -> check that the table received
rows in the partitions ingested since the start of the data interval.  The scheduled run is a
safety net for the event-driven launches: it loads whatever is still pending (often nothing,
since loads are idempotent) and turns "no data arrived" into a failed check someone sees.

With ``"launch": false`` in a pipeline's entry (the platform's ``scheduled_by: cloud_scheduler``
mode, where Cloud Scheduler owns the launches) the DAG only runs the row check on the schedule,
so the same cron never launches the job twice.

A missing or malformed pipelines.json raises at import, so it shows up as a DAG import error
instead of silently producing no DAGs.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from airflow.providers.google.cloud.hooks.dataflow import DataflowJobStatus
from airflow.providers.google.cloud.operators.bigquery import BigQueryCheckOperator
from airflow.providers.google.cloud.operators.dataflow import DataflowStartFlexTemplateOperator
from airflow.providers.google.cloud.sensors.dataflow import DataflowJobStatusSensor

import launch_request  # deployed next to this file

try:  # Airflow 3
    from airflow.sdk import DAG, CronDataIntervalTimetable
except ImportError:  # Airflow 2.x (composer-3-airflow-2 images, the lean profile's VM)
    from airflow import DAG
    from airflow.timetables.interval import CronDataIntervalTimetable

CONFIG_PATH = Path(__file__).with_name("pipelines.json")
DAG_KEYS = ("schedule", "template_spec_uri", "project", "region")


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


def build_dag(pipeline: str, config: dict) -> DAG:
    missing = [key for key in DAG_KEYS if not config.get(key)]
    if missing:
        raise ValueError(f"pipelines.json: pipeline {pipeline!r} lacks {missing}")
    launches = config.get("launch", True)
    # Validated here, at parse time; the operator appends a unique suffix to the job name per run.
    body = launch_request.build_launch_request(
        pipeline, {k: config[k] for k in ("parameters", "environment")}, config["template_spec_uri"],
        launch_request.job_name_base(pipeline),
    )
    with DAG(
        dag_id=f"etl_{pipeline.replace('-', '_')}",
        description=(f"Scheduled load of the {pipeline} landing files into BigQuery" if launches
                     else f"Check that {pipeline} rows arrived (Cloud Scheduler launches the loads)"),
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
            sql=rows_loaded_sql(config["parameters"]["output_table"]),
            use_legacy_sql=False,
        )
        if not launches:
            return dag
        launch = DataflowStartFlexTemplateOperator(
            task_id="launch_flex_template",
            project_id=config["project"],
            location=config["region"],
            body=body,
            append_job_name=True,
            wait_until_finished=False,
        )
        wait = DataflowJobStatusSensor(
            task_id="wait_for_job",
            project_id=config["project"],
            location=config["region"],
            job_id="{{ task_instance.xcom_pull(task_ids='launch_flex_template', key='job_id') }}",
            expected_statuses={DataflowJobStatus.JOB_STATE_DONE},
            mode="reschedule",
            poke_interval=60,
            timeout=3 * 60 * 60,
        )
        launch >> wait >> check
    return dag


def load_pipelines(path: Path = CONFIG_PATH) -> dict:
    pipelines = json.loads(path.read_text())
    if not isinstance(pipelines, dict) or not pipelines:
        raise ValueError(f"{path} must be a non-empty JSON object of pipeline name -> config")
    return pipelines


for _name, _config in load_pipelines().items():
    _dag = build_dag(_name, _config)
    globals()[_dag.dag_id] = _dag
