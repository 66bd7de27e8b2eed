"""The launcher: pure request building, and the Cloud Function as functions-framework serves it."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import re
import threading
from pathlib import Path
from dataclasses import dataclass

import pytest

from workloads.launcher import launch_request as lr

from .conftest import http_response
from .emulators.control_plane import CloudTasksSim, ControlPlaneAdapter, DataflowSim, session_for

SOURCE = Path(__file__).resolve().parents[1] / "launcher" / "main.py"
TEMPLATE = "gs://artifacts/templates/etl.json"
ORDERS = {
    "parameters": {
        "pipeline": "orders",
        "landing_prefix": "gs://landing-bkt/orders/",
        "schema": json.dumps([{"name": "id", "type": "INTEGER", "mode": "REQUIRED", "min": None, "max": None, "description": ""}]),
        "output_table": "proj:raw.orders",
        "curated_prefix": "gs://curated-bkt/orders/",
        "quarantine_prefix": "gs://quarantine-bkt/orders/",
        "checkpoint_uri": "gs://control-bkt/checkpoints/orders.json",
        "alert_secret": "projects/proj/secrets/sendgrid/versions/latest",
        "alert_to": "a@example.com,b@example.com",
        "alert_from": "etl@example.com",
    },
    "environment": {
        "maxWorkers": 3,
        "serviceAccountEmail": "etl-worker@proj.iam.gserviceaccount.com",
        "subnetwork": "https://www.googleapis.com/compute/v1/projects/proj/regions/europe-west1/subnetworks/dataflow",
        "ipConfiguration": "WORKER_IP_PRIVATE",
        "tempLocation": "gs://control-bkt/dataflow/temp",
        "stagingLocation": "gs://control-bkt/dataflow/staging",
    },
}
CUSTOMERS = copy.deepcopy(ORDERS)
CUSTOMERS["parameters"].update(pipeline="customers", landing_prefix="gs://landing-bkt/customers/")
PIPELINES = {"orders": ORDERS, "customers": CUSTOMERS}

# --- launch_request (stdlib only) ---------------------------------------------------------


def test_request_body_is_a_launch_flex_template_request():
    body = lr.build_launch_request("orders", ORDERS, TEMPLATE, "etl-orders-20240101-000000")
    assert body == {
        "launchParameter": {
            "jobName": "etl-orders-20240101-000000",
            "containerSpecGcsPath": TEMPLATE,
            "parameters": ORDERS["parameters"],
            "environment": {**ORDERS["environment"], "additionalUserLabels": {"etl-pipeline": "orders"}},
        }
    }
    assert "additionalUserLabels" not in ORDERS["environment"]  # the input is not mutated


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c["parameters"].pop("schema"), r"missing \['schema'\]"),
        (lambda c: c["parameters"].update(extra="x"), r"unknown parameters \['extra'\]"),
        (lambda c: c["parameters"].update(alert_to=["a@example.com"]), r"not strings \['alert_to'\]"),
        (lambda c: c["parameters"].update(pipeline="other"), "expected 'orders'"),
        (lambda c: c["environment"].update(maxWorker=3), r"unknown environment fields \['maxWorker'\]"),
        (lambda c: c["environment"].update(maxWorkers="3"), "must be an integer"),
    ],
)
def test_bad_configs_fail_when_the_request_is_built(change, message):
    config = copy.deepcopy(ORDERS)
    change(config)
    with pytest.raises(ValueError, match=message):
        lr.build_launch_request("orders", config, TEMPLATE, "etl-orders-x")


def test_optional_parameters_may_be_left_out_and_pipeline_is_filled_in():
    config = copy.deepcopy(ORDERS)
    for key in ("alert_secret", "alert_to", "alert_from", "pipeline"):
        config["parameters"].pop(key)
    body = lr.build_launch_request("orders", config, TEMPLATE, "etl-orders-x")
    assert body["launchParameter"]["parameters"]["pipeline"] == "orders"


@pytest.mark.parametrize("job_name", ["Etl-orders", "etl_orders", "etl-orders-", "1etl", "e" * 64])
def test_invalid_job_names_are_refused(job_name):
    with pytest.raises(ValueError, match="job name"):
        lr.build_launch_request("orders", ORDERS, TEMPLATE, job_name)


@pytest.mark.parametrize("pipeline", ["orders", "Web_Events.v2", "x" * 100, "__", "9lives"])
def test_each_pipeline_has_one_valid_job_name_on_every_path(pipeline):
    name = lr.job_name_for(pipeline)
    assert lr.JOB_NAME_PATTERN.match(name) and len(name) <= 63
    assert name == lr.job_name_base(pipeline)  # no time stamp: a second active job is refused by Dataflow
    assert lr.job_name_for("Web_Events.v2") == "etl-web-events-v2"


def test_a_run_request_task_is_named_routed_by_the_queue_and_a_cloud_event():
    queue = "projects/proj/locations/europe-west1/queues/etl-followups"
    task_id = lr.follow_up_task_id("orders", "2026-01-01_00_00_00-7")
    assert task_id == lr.follow_up_task_id("orders", "2026-01-01_00_00_00-7") != lr.follow_up_task_id("orders", "other")
    assert re.fullmatch(r"[0-9a-f]{16}-orders", task_id)
    when = dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc)
    url, body = lr.create_task_request(queue, lr.run_request("orders", "backlog"), task_id, schedule_time=when)
    assert url == f"https://cloudtasks.googleapis.com/v2/{queue}/tasks"
    task = body["task"]
    assert task["name"] == f"{queue}/tasks/{task_id}" and task["scheduleTime"] == "2026-01-01T12:00:00Z"
    http = task["httpRequest"]
    assert http["url"] == lr.ROUTED_BY_QUEUE and http["httpMethod"] == "POST"
    assert http["headers"]["ce-type"] == lr.RUN_REQUEST_TYPE and http["headers"]["ce-specversion"] == "1.0"
    assert json.loads(base64.b64decode(http["body"])) == {"pipeline": "orders", "reason": "backlog"}
    with pytest.raises(ValueError, match="reason"):
        lr.run_request("orders", "because")
    with pytest.raises(ValueError, match="queues"):
        lr.create_task_request("etl-followups", {})


def test_creating_a_task_takes_already_exists_as_the_same_request_and_raises_on_other_errors():
    queue = "projects/proj/locations/europe-west1/queues/etl-followups"
    body, task_id = lr.run_request("orders", "backlog"), lr.follow_up_task_id("orders", "job-1")
    calls = []

    def answering(status, text=""):
        def post(url, json, timeout):
            calls.append((url, json, timeout))
            return http_response(status, text)
        return post

    assert lr.create_task(answering(200), queue, body, task_id) is True
    assert calls == [(*lr.create_task_request(queue, body, task_id), 30)]
    assert lr.create_task(answering(409), queue, body, task_id) is False  # the same named task exists
    with pytest.raises(RuntimeError, match="^Cloud Tasks answered 403: denied$"):
        lr.create_task(answering(403, "denied"), queue, body, task_id, timeout=60)
    assert calls[-1][2] == 60


@pytest.mark.parametrize("created, covered", [("2026-01-01T11:59:59Z", False), ("2026-01-01T12:00:00Z", False),
                                              ("2026-01-01T12:00:00.000001Z", True), ("2026-01-01T12:00:01.123456789Z", True)])
def test_a_job_covers_a_request_only_if_created_after_it(created, covered):
    requested = dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc)
    assert lr.covers({"createTime": created}, requested) is covered


def test_jobs_listing_urls_page_through_every_state():
    base = "https://dataflow.googleapis.com/v1b3/projects/p/locations/europe-west1/jobs?filter=ALL&pageSize=100"
    assert lr.jobs_url("p", "europe-west1") == base
    assert lr.jobs_url("p", "europe-west1", "tok") == base + "&pageToken=tok"
    assert lr.jobs_url("p", "europe-west1", "") == base


REQUESTED = dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc)


def job(state: str, created: str = "2026-01-01T12:05:00Z", name: str = "etl-orders", location: str | None = "europe-west1",
        job_id: str = "j1") -> dict:
    out = {"id": job_id, "name": name, "currentState": state, "createTime": created}
    if location is not None:
        out["location"] = location
    return out


@pytest.mark.parametrize("jobs, outcome", [
    ([], None),
    ([job("JOB_STATE_DONE")], True),
    ([job("JOB_STATE_RUNNING")], None),
    ([job("JOB_STATE_DONE", location=None)], True),  # a listing without locations is the region asked for
    ([job("JOB_STATE_DONE", created="2026-01-01T11:59:00Z")], None),  # created before the request: not this run
    ([job("JOB_STATE_DONE", name="etl-customers")], None),  # another pipeline
    ([job("JOB_STATE_DONE", location="us-central1")], None),  # another region
    # the first job created after the request is the run, whatever comes after it
    ([job("JOB_STATE_RUNNING", created="2026-01-01T12:09:00Z", job_id="j2"), job("JOB_STATE_DONE", created="2026-01-01T12:01:00Z")], True),
    ([job("JOB_STATE_DONE", created="2026-01-01T12:09:00Z", job_id="j2"), job("JOB_STATE_RUNNING", created="2026-01-01T12:01:00Z")], None),
])
def test_run_outcome_reads_the_first_job_created_after_the_request(jobs, outcome):
    assert lr.run_outcome(jobs, "orders", "europe-west1", REQUESTED) is outcome


@pytest.mark.parametrize("state", ["JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_UPDATED", "JOB_STATE_DRAINED"])
def test_run_outcome_raises_for_a_run_that_ended_badly(state):
    jobs = [job("JOB_STATE_DONE", created="2026-01-01T12:09:00Z", job_id="later"), job(state, created="2026-01-01T12:01:00Z")]
    with pytest.raises(RuntimeError, match=f"^job j1 of orders ended in {state}$"):
        lr.run_outcome(jobs, "orders", "europe-west1", REQUESTED)


@pytest.mark.parametrize(
    "bucket, name, expected",
    [
        ("landing-bkt", "orders/2024/01/a.parquet", "orders"),
        ("landing-bkt", "customers/c.parquet", "customers"),
        ("landing-bkt", "orders/", None),  # folder placeholder
        ("landing-bkt", "orders/a.csv", None),
        ("landing-bkt", "orders/_temporary/a.parquet", None),
        ("landing-bkt", "unknown/a.parquet", None),
        ("landing-bkt", "ordersx/a.parquet", None),
        ("other-bkt", "orders/a.parquet", None),
    ],
)
def test_objects_are_routed_to_their_pipeline(bucket, name, expected):
    assert lr.pipeline_for_object(bucket, name, PIPELINES) == expected


def test_launch_request_module_needs_only_the_standard_library():
    """At import: a Python without site-packages imports it; only `authorized_session` imports google-auth, when called."""
    import ast
    import subprocess
    import sys

    tree = ast.parse((SOURCE.parent / "launch_request.py").read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    imported = {alias.name.split(".")[0] for node in top if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in top if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}
    lazy = {f.name: sorted({(n.module if isinstance(n, ast.ImportFrom) else n.names[0].name).split(".")[0]
                            for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))})
            for f in tree.body if isinstance(f, ast.FunctionDef)}
    assert {name: mods for name, mods in lazy.items() if mods} == {"authorized_session": ["google"]}
    bare = subprocess.run([sys.executable, "-S", "-E", "-s", "-c", "import launch_request; print(launch_request.SCOPES[0])"],
                          cwd=SOURCE.parent, capture_output=True, text=True, timeout=60)
    assert bare.stdout.strip() == "https://www.googleapis.com/auth/cloud-platform", bare.stderr


def test_the_authorized_session_uses_application_default_credentials_with_the_cloud_platform_scope(monkeypatch):
    from google.auth.credentials import AnonymousCredentials
    from google.auth.transport.requests import AuthorizedSession

    asked = []
    monkeypatch.setattr("google.auth.default", lambda scopes=None: asked.append(scopes) or (AnonymousCredentials(), "proj"))
    session = lr.authorized_session()
    assert isinstance(session, AuthorizedSession) and isinstance(session.credentials, AnonymousCredentials)
    assert asked == [lr.SCOPES]


# --- the Cloud Function, served by functions-framework ------------------------------------

QUEUE = "projects/proj/locations/europe-west1/queues/acme-dev-etl-followups"
SCHEDULED_ONLY = copy.deepcopy(ORDERS)
SCHEDULED_ONLY["parameters"].update(pipeline="daily", landing_prefix="gs://landing-bkt/daily/")


@dataclass
class Launcher:
    client: object
    dataflow: DataflowSim
    tasks: CloudTasksSim
    adapter: ControlPlaneAdapter

    def land(self, name: str, bucket: str = "landing-bkt", time: str | None = None, client=None):
        """POST a finalize CloudEvent the way Eventarc delivers it (binary content mode)."""
        headers = {
            "ce-id": f"{name}-1", "ce-specversion": "1.0", "ce-source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
            "ce-type": "google.cloud.storage.object.v1.finalized", "ce-subject": f"objects/{name}",
            "ce-time": time or dt.datetime.now(dt.timezone.utc).isoformat(), "Content-Type": "application/json",
        }
        data = {"bucket": bucket, "name": name, "generation": "1714979287000000", "contentType": "application/octet-stream"}
        return (client or self.client).post("/", headers=headers, data=json.dumps(data))

    def deliver(self, body: bytes, headers: dict) -> int:
        return self.client.post("/", headers=headers, data=body).status_code

    def dispatch(self) -> int:
        return self.tasks.dispatch(self.deliver)

    def request_run(self, pipeline: str, reason: str = "schedule"):
        url, body = lr.create_task_request(QUEUE, lr.run_request(pipeline, reason))
        self.tasks.create(QUEUE, body)


@pytest.fixture
def launcher(monkeypatch):
    import functions_framework

    pipelines = {"orders": {**ORDERS, "on_arrival": True}, "customers": {**CUSTOMERS, "on_arrival": True},
                 "daily": {**SCHEDULED_ONLY, "on_arrival": False}}
    monkeypatch.setenv("PROJECT_ID", "proj")
    monkeypatch.setenv("REGION", "europe-west1")
    monkeypatch.setenv("TEMPLATE_SPEC_URI", TEMPLATE)
    monkeypatch.setenv("PIPELINES_JSON", json.dumps(pipelines))
    monkeypatch.setenv("FOLLOWUP_QUEUE", QUEUE)
    monkeypatch.setenv("MAX_ACTIVE_JOBS", "20")
    app = functions_framework.create_app(target="launch", source=str(SOURCE), signature_type="cloudevent")
    import main  # the module functions-framework just loaded from SOURCE

    main.settings.cache_clear()
    dataflow, tasks = DataflowSim(), CloudTasksSim()
    adapter = ControlPlaneAdapter(dataflow, tasks)
    monkeypatch.setattr(main, "session", lambda: session_for(adapter))
    yield Launcher(app.test_client(), dataflow, tasks, adapter)
    main.settings.cache_clear()


def logged(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_a_landed_file_launches_the_flex_template_with_the_pipeline_settings(launcher):
    assert launcher.land("orders/2024/05/06/a.parquet").status_code == 200
    (job,) = launcher.dataflow.launched()
    launches = [(m, u, b) for m, u, b in launcher.adapter.requests if u.endswith("flexTemplates:launch")]
    (method, url, body), = launches
    assert url == "https://dataflow.googleapis.com/v1b3/projects/proj/locations/europe-west1/flexTemplates:launch"
    launch = body["launchParameter"]
    assert launch["jobName"] == "etl-orders" and launch["containerSpecGcsPath"] == TEMPLATE
    assert launch["parameters"] == ORDERS["parameters"]
    for key in ("maxWorkers", "ipConfiguration", "serviceAccountEmail", "subnetwork"):
        assert launch["environment"][key] == ORDERS["environment"][key], key
    assert job.name == "etl-orders"


@pytest.mark.parametrize(
    "bucket, name",
    [("landing-bkt", "orders/"), ("landing-bkt", "orders/readme.txt"), ("landing-bkt", "elsewhere/a.parquet"),
     ("other", "orders/a.parquet"), ("landing-bkt", "daily/a.parquet"), ("landing-bkt", "_archive/orders/a.1.parquet")],
)
def test_ignored_objects_make_no_http_call(launcher, bucket, name):
    assert launcher.land(name, bucket=bucket).status_code == 200
    assert launcher.adapter.requests == []


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttling_and_server_errors_fail_the_invocation_so_eventarc_retries(launcher, status, monkeypatch):
    monkeypatch.setattr(launcher.dataflow, "launch", lambda location, body: (status, {"error": {"code": status}}))
    assert launcher.land("orders/a.parquet").status_code == 500


@pytest.mark.parametrize("status", [400, 403, 404])
def test_configuration_errors_are_logged_and_acknowledged(launcher, status, monkeypatch, capsys):
    monkeypatch.setattr(launcher.dataflow, "launch", lambda location, body: (status, {"error": {"code": status}}))
    assert launcher.land("orders/a.parquet").status_code == 200
    entry = logged(capsys)[-1]
    assert (entry["event"], entry["severity"], entry["status"]) == ("etl_launch_rejected", "ERROR", status)


def test_files_landing_while_the_job_runs_make_one_follow_up_and_no_launch(launcher, capsys):
    launcher.land("orders/a.parquet")
    for i in range(20):
        launcher.land(f"orders/b{i}.parquet")
    assert len(launcher.dataflow.launched()) == 1 and launcher.dataflow.launch_calls == 1
    (task_name,) = launcher.tasks.created
    job = launcher.dataflow.launched()[0]
    assert task_name.endswith("/tasks/" + lr.follow_up_task_id("orders", job.id))
    events = [e["event"] for e in logged(capsys)]
    assert events.count("etl_follow_up_requested") == 1 and events.count("etl_follow_up_exists") == 19


def test_a_job_created_after_the_file_landed_covers_it(launcher, capsys):
    landed = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    launcher.land("orders/a.parquet")
    launcher.land("orders/late-event.parquet", time=landed.isoformat())  # e.g. a redelivered event
    assert launcher.tasks.created == [] and len(launcher.dataflow.launched()) == 1
    assert logged(capsys)[-1]["event"] == "etl_launch_covered"


def test_a_queued_request_waits_while_the_job_runs_then_launches(launcher):
    launcher.land("orders/a.parquet")
    first = launcher.dataflow.launched()[0]
    launcher.request_run("orders")
    assert launcher.dispatch() == 0  # 503: retried later
    (task,) = launcher.tasks.tasks.values()
    assert task.attempts == 1
    launcher.dataflow.finish(first)
    assert launcher.dispatch() == 1
    assert [j.name for j in launcher.dataflow.launched()] == ["etl-orders", "etl-orders"]


def test_a_scheduled_only_pipeline_launches_from_run_requests(launcher):
    launcher.request_run("daily")
    assert launcher.dispatch() == 1
    assert [j.name for j in launcher.dataflow.launched()] == ["etl-daily"]


def test_a_run_request_for_an_unknown_pipeline_is_acknowledged_and_logged(launcher, capsys):
    launcher.request_run("nope")
    assert launcher.dispatch() == 1 and launcher.dataflow.launched() == []
    assert logged(capsys)[-1]["event"] == "etl_run_request_rejected"


def test_at_the_project_job_limit_launches_are_deferred_not_sent(launcher, monkeypatch):
    monkeypatch.setenv("MAX_ACTIVE_JOBS", "1")
    import main

    main.settings.cache_clear()
    launcher.land("orders/a.parquet")
    launcher.land("customers/a.parquet")  # one job already runs: the limit
    assert [j.name for j in launcher.dataflow.launched()] == ["etl-orders"]
    (deferred,) = launcher.tasks.created
    assert launcher.dispatch() == 0  # still at the limit: retried later
    launcher.dataflow.finish(launcher.dataflow.launched()[0])
    assert launcher.dispatch() == 1
    assert [j.name for j in launcher.dataflow.launched()] == ["etl-orders", "etl-customers"]


def burst(launcher, names, threads=10):
    import functions_framework  # noqa: F401 - one client per thread, like one request per instance

    chunks = [names[i::threads] for i in range(threads)]
    errors = []

    def worker(chunk):
        client = launcher.client.application.test_client()
        for name in chunk:
            status = launcher.land(name, client=client).status_code
            if status != 200:
                errors.append((name, status))

    pool = [threading.Thread(target=worker, args=(chunk,)) for chunk in chunks]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=120)
    assert errors == []


def covered(launcher, landed: dict[str, dt.datetime]) -> set[str]:
    """Files some job listed after they landed (the ETL takes every pending file it lists)."""
    listings = [j.listed_at for j in launcher.dataflow.launched() if j.listed_at]
    return {name for name, at in landed.items() if any(listed >= at for listed in listings)}


def test_a_500_file_burst_costs_two_launches_and_leaves_no_file_behind(launcher):
    names = [f"orders/2024/06/01/part-{i:04d}.parquet" for i in range(500)]
    landed = {}
    for name in names[:250]:
        landed[name] = dt.datetime.now(dt.timezone.utc)
    burst(launcher, names[:250])
    first = launcher.dataflow.launched()[0]
    launcher.dataflow.start(first)  # the job lists the folder while the burst goes on
    for name in names[250:]:
        landed[name] = dt.datetime.now(dt.timezone.utc)
    burst(launcher, names[250:])
    assert len(launcher.dataflow.launched()) == 1 and len(launcher.tasks.created) == 1
    while launcher.tasks.tasks:  # the queue retries the follow-up until the running job is done
        if launcher.dispatch() == 0:
            for job in launcher.dataflow.active():
                launcher.dataflow.start(job)
                launcher.dataflow.finish(job)
    for job in launcher.dataflow.active():
        launcher.dataflow.start(job)
        launcher.dataflow.finish(job)
    assert len(launcher.dataflow.launched("etl-orders")) == 2
    assert launcher.dataflow.max_active_per_name == {"etl-orders": 1}
    assert covered(launcher, landed) == set(names)
