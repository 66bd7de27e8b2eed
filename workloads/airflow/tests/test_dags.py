"""Parse workloads/dags with a real Airflow DagBag, deployed the way Composer sees it.

The test copies the DAG folder (following the launch_request.py link) plus a pipelines.json
into a temporary dags folder, exactly what Terraform uploads to the Composer bucket, and lets
Airflow's own DagBag import it.
"""

from __future__ import annotations

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
QUEUE = "projects/my-proj/locations/europe-west1/queues/acme-prod-etl-followups"
ORDERS = {
    "schedule": "0 3 * * *",
    "launch": True,
    "project": "my-proj",
    "region": "europe-west1",
    "output_table": "my-proj:raw.orders",
    "followup_queue": QUEUE,
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
    events = {**ORDERS, "schedule": "*/30 * * * *"}
    bag = parse({"orders": ORDERS, "web-events": events})
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == ["etl_orders", "etl_web_events"]
    # .airflowignore keeps the helper module out of DAG parsing.
    assert sorted(Path(stat.file).name for stat in bag.dagbag_stats) == ["etl_dags.py"]


def test_dag_requests_a_run_waits_for_it_then_checks(parse):
    dag = parse({"orders": ORDERS}).dags["etl_orders"]
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert [task.task_id for task in dag.topological_sort()] == ["request_run", "wait_for_run", "check_rows_loaded"]

    request = dag.get_task("request_run")
    assert request.python_callable.__name__ == "request_run"
    assert request.op_kwargs == {"pipeline": "orders", "queue": QUEUE}

    wait = dag.get_task("wait_for_run")
    assert wait.mode == "reschedule" and wait.poke_interval == 60 and wait.timeout == 3 * 60 * 60
    assert wait.op_kwargs["pipeline"] == "orders" and (wait.op_kwargs["project"], wait.op_kwargs["region"]) == ("my-proj", "europe-west1")
    assert "xcom_pull(task_ids='request_run')" in wait.op_kwargs["requested_at"]

    check = dag.get_task("check_rows_loaded")
    assert check.sql == ("SELECT COUNT(*) > 0 FROM `my-proj.raw.orders` WHERE _PARTITIONTIME >= "
                         "TIMESTAMP_TRUNC(TIMESTAMP('{{ data_interval_start }}'), DAY)")  # the day of the interval, not the year
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
        ({"orders": {**ORDERS, "followup_queue": "etl-followups"}}, "queues"),
    ],
)
def test_bad_config_is_an_import_error_not_silence(parse, pipelines, message):
    bag = parse(pipelines)
    assert bag.dag_ids == []
    (error,) = bag.import_errors.values()
    assert message in error


def test_verify_only_dag_when_cloud_scheduler_requests_the_runs(parse):
    """`launch: false` (scheduled_by: cloud_scheduler): the DAG never requests runs, it only checks rows."""
    dag = parse({"orders": {**ORDERS, "launch": False}}).dags["etl_orders"]
    assert [task.task_id for task in dag.topological_sort()] == ["check_rows_loaded"]
    assert "Cloud Scheduler requests" in dag.description


class FakeResponse:
    def __init__(self, status: int, body: dict):
        self.status_code, self._body, self.text = status, body, json.dumps(body)

    def json(self):
        return self._body


def test_the_callables_request_a_run_on_the_queue_and_wait_for_the_job_created_after_it(parse, monkeypatch):
    """The task callables with the HTTP session replaced (autospec of google-auth's AuthorizedSession)."""
    from unittest import mock

    from google.auth.transport.requests import AuthorizedSession

    parse({"orders": ORDERS})
    import etl_dags

    session = mock.create_autospec(AuthorizedSession, instance=True)
    session.post.return_value = FakeResponse(200, {"name": "t"})
    monkeypatch.setattr(etl_dags.launch_request, "authorized_session", lambda: session)
    requested_at = etl_dags.request_run("orders", QUEUE)
    (url,), kwargs = session.post.call_args
    assert url == f"https://cloudtasks.googleapis.com/v2/{QUEUE}/tasks"
    assert kwargs["json"]["task"]["httpRequest"]["headers"]["ce-type"] == "dataplatform.etl.v1.runRequested"

    before, after = "2000-01-01T00:00:00Z", "2999-01-01T00:00:00Z"
    jobs = {"jobs": [{"id": "old", "name": "etl-orders", "location": "europe-west1", "createTime": before, "currentState": "JOB_STATE_DONE"}]}
    session.get.return_value = FakeResponse(200, jobs)
    assert etl_dags.run_finished("orders", "my-proj", "europe-west1", requested_at) is False  # only an older run
    jobs["jobs"].append({"id": "new", "name": "etl-orders", "location": "europe-west1", "createTime": after, "currentState": "JOB_STATE_RUNNING"})
    assert etl_dags.run_finished("orders", "my-proj", "europe-west1", requested_at) is False
    jobs["jobs"][-1]["currentState"] = "JOB_STATE_DONE"
    assert etl_dags.run_finished("orders", "my-proj", "europe-west1", requested_at) is True
    jobs["jobs"][-1]["currentState"] = "JOB_STATE_FAILED"
    with pytest.raises(RuntimeError, match="JOB_STATE_FAILED"):
        etl_dags.run_finished("orders", "my-proj", "europe-west1", requested_at)
