"""Shared fixtures: a local "project" where every GCP service is its local stand-in."""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workloads.etl.reporting import read_run_log
from workloads.etl.table import LocalJsonlTable

SCHEMA = [
    {"name": "id", "type": "INTEGER", "mode": "REQUIRED", "min": 1, "max": None, "description": "Row id"},
    {"name": "name", "type": "STRING", "mode": "REQUIRED", "min": None, "max": None, "description": ""},
    {"name": "score", "type": "FLOAT", "mode": "NULLABLE", "min": 0, "max": 100, "description": "0..100"},
    {"name": "seen_at", "type": "TIMESTAMP", "mode": "NULLABLE", "min": None, "max": None, "description": ""},
]
ARROW = pa.schema([("id", pa.int64()), ("name", pa.string()), ("score", pa.float64()), ("seen_at", pa.timestamp("us", tz="UTC"))])
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def good_rows(first_id: int, count: int) -> list[dict[str, Any]]:
    return [
        {"id": i, "name": f"n{i}", "score": float(i % 100), "seen_at": T0 + dt.timedelta(hours=i)}
        for i in range(first_id, first_id + count)
    ]


def http_response(status: int, text: str = ""):
    """A ``requests.Response`` with this status and body (what a mocked HTTP call returns)."""
    import requests

    r = requests.Response()
    r.status_code, r._content = status, text.encode()
    return r


@dataclass
class LocalProject:
    root: Path
    pipeline: str = "things"

    @property
    def landing(self) -> Path:
        return self.root / "landing" / self.pipeline

    @property
    def table(self) -> LocalJsonlTable:
        return LocalJsonlTable(str(self.root / "bq" / self.pipeline))

    @property
    def checkpoint_path(self) -> Path:
        return self.root / "control" / "checkpoints" / f"{self.pipeline}.json"

    @property
    def run_log(self) -> Path:
        return self.root / "logs" / "summary.jsonl"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def secret(self) -> Path:
        return self.root / "secret.txt"

    def args(self, outbox: bool = True, **overrides: str) -> list[str]:
        self.secret.write_text("SG.test-key\n")
        values = {
            "runner": "DirectRunner",
            "pipeline": self.pipeline,
            "landing_prefix": f"{self.landing}/",
            "schema": json.dumps(SCHEMA),
            "output_table": str(self.root / "bq" / self.pipeline),
            "curated_prefix": f"{self.root / 'curated' / self.pipeline}/",
            "quarantine_prefix": f"{self.root / 'quarantine' / self.pipeline}/",
            "checkpoint_uri": str(self.checkpoint_path),
            "alert_secret": str(self.secret),
            "alert_to": "a@example.com, b@example.com",
            "alert_from": "etl@example.com",
            "run_log": str(self.run_log),
        }
        if outbox:
            values["alert_outbox"] = str(self.outbox)
        values.update(overrides)
        return [f"--{key}={value}" for key, value in values.items()]

    def write(self, name: str, rows: list[dict[str, Any]], schema: pa.Schema | None = ARROW) -> Path:
        path = self.landing / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
        return path

    def summaries(self) -> list[dict[str, Any]]:
        return read_run_log(str(self.run_log))

    def table_ids(self) -> list[int]:
        return [row["id"] for row in self.table.rows()]

    def checkpoint(self) -> dict[str, Any] | None:
        return json.loads(self.checkpoint_path.read_text()) if self.checkpoint_path.exists() else None

    def mails(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted(self.outbox.glob("mail-*.json"))]


@pytest.fixture
def project(tmp_path: Path) -> LocalProject:
    return LocalProject(tmp_path)


@pytest.fixture(autouse=True)
def _no_gcp(monkeypatch):
    """Make any accidental real GCP call fail fast instead of hunting for credentials."""
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test-project")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", os.devnull)


# --- emulators ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def gcs_server():
    """fake-gcs-server on 127.0.0.1 for the whole session; production GCS code talks to it."""
    from .emulators.fake_gcs import FakeGcsServer

    server = FakeGcsServer()
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = server.url
    from workloads.etl import storage

    storage._GCS._client = None
    try:
        yield server
    finally:
        server.stop()
        storage._GCS._client = None
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous


_BUCKETS = iter(range(1, 1_000_000))


@pytest.fixture
def gcs_bucket(gcs_server):
    """A fresh versioned bucket name per test (no state leaks between tests)."""
    name = f"bkt-{os.getpid()}-{next(_BUCKETS)}"
    gcs_server.create_bucket(name)
    return name


@pytest.fixture
def bigquery(gcs_server, monkeypatch):
    """The BigQuery load-job stand-in on 127.0.0.1; the real google-cloud-bigquery client talks to it."""
    from google.auth.credentials import AnonymousCredentials

    from .emulators.bigquery_jobs import BigQueryJobsStandIn

    stand_in = BigQueryJobsStandIn(gcs_server.url)
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", stand_in.url)
    monkeypatch.setattr("google.auth.default", lambda *a, **k: (AnonymousCredentials(), "proj"))
    try:
        yield stand_in
    finally:
        stand_in.stop()


@dataclass
class CloudProject(LocalProject):
    """The same project, its buckets in fake-gcs-server and its table behind the BigQuery stand-in."""

    bucket: str = ""
    gcs: Any = None
    bq: Any = None

    def args(self, outbox: bool = True, **overrides: str) -> list[str]:
        base = f"gs://{self.bucket}"
        values = {
            "landing_prefix": f"{base}/landing/{self.pipeline}/",
            "archive_prefix": f"{base}/landing/_archive/{self.pipeline}/",
            "output_table": "proj:raw.things",
            "curated_prefix": f"{base}/curated/{self.pipeline}/",
            "quarantine_prefix": f"{base}/quarantine/{self.pipeline}/",
            "checkpoint_uri": f"{base}/control/checkpoints/{self.pipeline}.json",
            "followup_outbox": str(self.root / "followups"),
        }
        values.update(overrides)
        return super().args(outbox, **values)

    def write(self, name: str, rows: list[dict[str, Any]], schema: pa.Schema | None = ARROW) -> str:
        import io

        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), sink)
        return self.put(name, sink.getvalue())

    def put(self, name: str, data: bytes) -> str:
        self.gcs.client().bucket(self.bucket).blob(f"landing/{self.pipeline}/{name}").upload_from_string(data)
        return f"gs://{self.bucket}/landing/{self.pipeline}/{name}"

    def names(self, prefix: str) -> list[str]:
        return sorted(b.name for b in self.gcs.client().list_blobs(self.bucket, prefix=prefix))

    def table_ids(self) -> list[int]:
        return [row["id"] for row in self.bq.tables.get("proj.raw.things", [])]

    def checkpoint(self) -> dict[str, Any] | None:
        blob = self.gcs.client().bucket(self.bucket).blob(f"control/checkpoints/{self.pipeline}.json")
        return json.loads(blob.download_as_bytes()) if blob.exists() else None


@pytest.fixture
def cloud(tmp_path, gcs_server, gcs_bucket, bigquery) -> CloudProject:
    return CloudProject(tmp_path, bucket=gcs_bucket, gcs=gcs_server, bq=bigquery)
