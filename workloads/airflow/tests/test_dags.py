"""Parse workloads/dags with a real Airflow DagBag, deployed the way Composer sees it.

The test copies the DAG folder (following the launch_request.py link) plus a pipelines.json
into a temporary dags folder, exactly what Terraform uploads to the Composer bucket, and lets
Airflow's own DagBag import it.
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
from pathlib import Path

import pytest

try:  # Airflow 3
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow 2 (for checking the DAGs against an Airflow 2 environment by hand)
    from airflow.models.dagbag import DagBag

DAGS = Path(__file__).resolve().parents[2] / "dags"
PARAMETERS = {
    "pipeline": "orders",
    "landing_prefix": "gs://landing-bkt/orders/",
    "schema": json.dumps([{"name": "id", "type": "INTEGER", "mode": "REQUIRED", "min": 1, "max": None, "description": ""}]),
    "output_table": "my-proj:raw.orders",
    "curated_prefix": "gs://curated-bkt/orders/",
    "quarantine_prefix": "gs://quarantine-bkt/orders/",
    "checkpoint_uri": "gs://control-bkt/checkpoints/orders.json",
    "alert_secret": "projects/my-proj/secrets/sendgrid/versions/latest",
    "alert_to": "a@example.com",
    "alert_from": "etl@example.com",
}
ORDERS = {
    "parameters": PARAMETERS,
    "environment": {
        "maxWorkers": 2,
        "serviceAccountEmail": "etl@my-proj.iam.gserviceaccount.com",
        "subnetwork": "https://www.googleapis.com/compute/v1/projects/my-proj/regions/europe-west1/subnetworks/df",
        "ipConfiguration": "WORKER_IP_PRIVATE",
        "tempLocation": "gs://control-bkt/tmp",
        "stagingLocation": "gs://control-bkt/staging",
    },
    "schedule": "0 3 * * *",
    "template_spec_uri": "gs://artifacts/templates/etl.json",
    "project": "my-proj",
    "region": "europe-west1",
}


def deploy(tmp_path: Path, pipelines) -> Path:
    folder = tmp_path / "dags"
    folder.mkdir()
    for item in DAGS.iterdir():
        if item.is_file():
            shutil.copy(item.resolve(), folder / item.name)  # resolve(): the link becomes a real file
    if pipelines is not None:
        (folder / "pipelines.json").write_text(json.dumps(pipelines))
    return folder


@pytest.fixture
def parse(tmp_path, monkeypatch):
    def parse(pipelines) -> DagBag:
        folder = deploy(tmp_path, pipelines)
        monkeypatch.syspath_prepend(str(folder))  # Composer puts the dags folder on sys.path
        sys.modules.pop("launch_request", None)
        return DagBag(dag_folder=str(folder))

    return parse


def test_one_dag_per_pipeline_parses_without_errors(parse):
    events = copy.deepcopy(ORDERS)
    events["parameters"].update(pipeline="web-events", landing_prefix="gs://landing-bkt/web-events/")
    events["schedule"] = "*/30 * * * *"
    bag = parse({"orders": ORDERS, "web-events": events})
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == ["etl_orders", "etl_web_events"]
    # .airflowignore keeps the helper module out of DAG parsing.
    assert sorted(Path(stat.file).name for stat in bag.dagbag_stats) == ["etl_dags.py"]


def test_dag_launches_waits_then_checks(parse):
    dag = parse({"orders": ORDERS}).dags["etl_orders"]
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert [task.task_id for task in dag.topological_sort()] == ["launch_flex_template", "wait_for_job", "check_rows_loaded"]

    launch = dag.get_task("launch_flex_template")
    assert (launch.project_id, launch.location, launch.append_job_name, launch.wait_until_finished) == (
        "my-proj", "europe-west1", True, False,
    )
    body = launch.body["launchParameter"]
    assert body["jobName"] == "etl-orders"
    assert body["containerSpecGcsPath"] == "gs://artifacts/templates/etl.json"
    assert body["parameters"] == PARAMETERS
    assert body["environment"]["ipConfiguration"] == "WORKER_IP_PRIVATE"

    wait = dag.get_task("wait_for_job")
    assert wait.expected_statuses == {"JOB_STATE_DONE"} and wait.mode == "reschedule"
    assert "xcom_pull(task_ids='launch_flex_template', key='job_id')" in wait.job_id

    check = dag.get_task("check_rows_loaded")
    assert check.sql.startswith("SELECT COUNT(*) > 0 FROM `my-proj.raw.orders` WHERE _PARTITIONTIME >=")
    assert check.use_legacy_sql is False


def test_schedule_comes_from_the_config(parse):
    dag = parse({"orders": ORDERS}).dags["etl_orders"]
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"  # data_interval_start is meaningful
    assert (getattr(dag.timetable, "expression", None) or dag.timetable.summary) == "0 3 * * *"


@pytest.mark.parametrize(
    "pipelines, message",
    [
        (None, "pipelines.json"),
        ({}, "non-empty"),
        ({"orders": {**ORDERS, "schedule": None}}, "lacks ['schedule']"),
        ({"orders": {**ORDERS, "parameters": {**PARAMETERS, "output_tabel": "x"}}}, "unknown parameters"),
    ],
)
def test_bad_config_is_an_import_error_not_silence(parse, pipelines, message):
    bag = parse(pipelines)
    assert bag.dag_ids == []
    (error,) = bag.import_errors.values()
    assert message in error


def test_verify_only_dag_when_cloud_scheduler_launches(parse):
    """`launch: false` (scheduled_by: cloud_scheduler): the DAG never launches, it only checks rows."""
    dag = parse({"orders": {**ORDERS, "launch": False}}).dags["etl_orders"]
    assert [task.task_id for task in dag.topological_sort()] == ["check_rows_loaded"]
    assert "Cloud Scheduler launches" in dag.description
