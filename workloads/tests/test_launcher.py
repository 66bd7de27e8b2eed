"""The launcher: pure request building, and the Cloud Function as functions-framework serves it."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from unittest import mock

import pytest
import requests

from workloads.launcher import launch_request as lr

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
def test_job_names_are_valid_and_carry_the_utc_time(pipeline):
    now = dt.datetime(2024, 5, 6, 9, 8, 7, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    name = lr.job_name_for(pipeline, now)
    assert lr.JOB_NAME_PATTERN.match(name) and len(name) <= 63
    assert name.endswith("-20240506-070807")
    assert lr.job_name_for(pipeline, now.replace(tzinfo=None)).endswith("-20240506-090807")
    assert lr.job_name_for("Web_Events.v2", now) == "etl-web-events-v2-20240506-070807"


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
    import ast
    import sys

    tree = ast.parse((SOURCE.parent / "launch_request.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}


# --- the Cloud Function, served by functions-framework ------------------------------------


@pytest.fixture
def client(monkeypatch):
    import functions_framework

    monkeypatch.setenv("PROJECT_ID", "proj")
    monkeypatch.setenv("REGION", "europe-west1")
    monkeypatch.setenv("TEMPLATE_SPEC_URI", TEMPLATE)
    monkeypatch.setenv("PIPELINES_JSON", json.dumps(PIPELINES))
    app = functions_framework.create_app(target="launch", source=str(SOURCE), signature_type="cloudevent")
    import main  # the module functions-framework just loaded from SOURCE

    main.settings.cache_clear()
    main.session.cache_clear()
    from google.auth.credentials import AnonymousCredentials

    monkeypatch.setattr("google.auth.default", lambda scopes: (AnonymousCredentials(), "proj"))
    return app.test_client()


def storage_event(client, bucket, name):
    """POST a CloudEvent the way Eventarc delivers it (binary content mode)."""
    headers = {
        "ce-id": "1234", "ce-specversion": "1.0", "ce-source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
        "ce-type": "google.cloud.storage.object.v1.finalized", "ce-subject": f"objects/{name}",
        "ce-time": "2024-05-06T07:08:07Z", "Content-Type": "application/json",
    }
    data = {"bucket": bucket, "name": name, "generation": "1714979287000000", "contentType": "application/octet-stream"}
    return client.post("/", headers=headers, data=json.dumps(data))


def http_response(status, body):
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    return response


def test_a_landed_file_launches_the_flex_template(client):
    sent = []

    def send(adapter, request, **kwargs):
        sent.append(request)
        return http_response(200, {"job": {"id": "2024-05-06_00_00_00-123", "name": "etl-orders"}})

    with mock.patch("requests.adapters.HTTPAdapter.send", send):
        response = storage_event(client, "landing-bkt", "orders/2024/05/06/a.parquet")
    assert response.status_code == 200
    (request,) = sent
    assert request.method == "POST"
    assert request.url == "https://dataflow.googleapis.com/v1b3/projects/proj/locations/europe-west1/flexTemplates:launch"
    body = json.loads(request.body)
    launch = body["launchParameter"]
    assert launch["containerSpecGcsPath"] == TEMPLATE
    assert launch["parameters"] == ORDERS["parameters"]
    assert launch["environment"]["subnetwork"] == ORDERS["environment"]["subnetwork"]
    assert lr.JOB_NAME_PATTERN.match(launch["jobName"]) and launch["jobName"].startswith("etl-orders-")


@pytest.mark.parametrize(
    "bucket, name",
    [("landing-bkt", "orders/"), ("landing-bkt", "orders/readme.txt"), ("landing-bkt", "elsewhere/a.parquet"), ("other", "orders/a.parquet")],
)
def test_ignored_objects_make_no_http_call(client, bucket, name):
    with mock.patch("requests.adapters.HTTPAdapter.send") as send:
        response = storage_event(client, bucket, name)
    assert response.status_code == 200
    send.assert_not_called()


def test_transient_dataflow_errors_fail_the_invocation_so_eventarc_retries(client):
    with mock.patch("requests.adapters.HTTPAdapter.send", return_value=http_response(503, {"error": "unavailable"})):
        response = storage_event(client, "landing-bkt", "orders/a.parquet")
    assert response.status_code == 500


@pytest.mark.parametrize("status", [400, 403, 409])
def test_permanent_errors_and_duplicates_are_acknowledged(client, status, capsys):
    with mock.patch("requests.adapters.HTTPAdapter.send", return_value=http_response(status, {"error": "x"})):
        response = storage_event(client, "landing-bkt", "orders/a.parquet")
    assert response.status_code == 200
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert logged[-1]["event"] == ("etl_launch_already_running" if status == 409 else "etl_launch_rejected")
