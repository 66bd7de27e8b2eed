"""A BigQuery REST stand-in for load jobs, on 127.0.0.1, for the real google-cloud-bigquery client.

No BigQuery emulator serves Parquet load jobs from a GCS emulator (see workloads/README.md:
goccy/bigquery-emulator needs a cgo ZetaSQL build and its load path from GCS is broken), so
this serves exactly the part of the REST API the ETL uses, with BigQuery's documented
semantics, and the production ``BigQueryTable`` talks to it through the real client
(``BIGQUERY_EMULATOR_HOST``):

* ``GET  /bigquery/v2/projects/{p}/datasets/{d}``   -> the dataset's location
* ``POST /bigquery/v2/projects/{p}/jobs``            -> a load job; an existing job id is 409 ALREADY_EXISTS
* ``GET  /bigquery/v2/projects/{p}/jobs/{id}``       -> the job, or 404

A load job reads every source URI from the GCS emulator (``STORAGE_EMULATOR_HOST``) as Parquet
and appends all rows, or none: a source listed in ``poison`` (or unreadable) fails the whole
job with ``errorResult.reason = invalid`` and the file in ``errors[].location``, as BigQuery does.
Every request is recorded, so tests can assert what the client sent.
"""

from __future__ import annotations

import io
import json
import re
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow.parquet as pq


class BigQueryJobsStandIn:
    def __init__(self, gcs_url: str, location: str = "EU"):
        self.gcs_url = gcs_url
        self.location = location
        self.jobs: dict[str, dict] = {}
        self.tables: dict[str, list[dict]] = {}
        self.requests: list[tuple[str, str, dict | None]] = []
        self.poison: set[str] = set()
        self.unavailable = 0  # answer the next N job inserts with 503
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                stand_in._record("GET", self.path, None)
                status, body = stand_in.get(urllib.parse.urlparse(self.path).path)
                self._send(status, body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length) or b"{}")
                stand_in._record("POST", self.path, payload)
                status, body = stand_in.post(urllib.parse.urlparse(self.path).path, payload)
                self._send(status, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # A short poll: stop() (once per test) waits for the loop to notice, 0.5 s by default.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _record(self, method: str, path: str, body: dict | None) -> None:
        with self._lock:
            self.requests.append((method, path, body))

    def get(self, path: str):
        if m := re.fullmatch(r"/bigquery/v2/projects/([^/]+)/datasets/([^/]+)", path):
            return 200, {"kind": "bigquery#dataset", "id": f"{m[1]}:{m[2]}", "location": self.location,
                         "datasetReference": {"projectId": m[1], "datasetId": m[2]}}
        if m := re.fullmatch(r"/bigquery/v2/projects/([^/]+)/jobs/([^/]+)", path):
            with self._lock:
                job = self.jobs.get(m[2])
            return (200, job) if job else (404, _error(404, "NOT_FOUND", f"Not found: Job {m[1]}:{m[2]}"))
        return 404, _error(404, "NOT_FOUND", path)

    def post(self, path: str, payload: dict):
        if not re.fullmatch(r"/bigquery/v2/projects/([^/]+)/jobs", path):
            return 404, _error(404, "NOT_FOUND", path)
        ref = payload.get("jobReference", {})
        job_id = ref.get("jobId")
        with self._lock:
            if job_id in self.jobs:
                return 409, _error(409, "ALREADY_EXISTS", f"Already Exists: Job {ref.get('projectId')}:{self.location}.{job_id}")
            if self.unavailable:
                self.unavailable -= 1
                return 503, _error(503, "UNAVAILABLE", "backend error")
        load = payload["configuration"]["load"]
        table = load["destinationTable"]
        key = f"{table['projectId']}.{table['datasetId']}.{table['tableId']}"
        rows, errors = [], []
        for uri in load["sourceUris"]:
            if uri in self.poison:
                errors.append({"reason": "invalid", "location": uri, "message": f"Error while reading data, error message: poison; File: {uri}"})
                continue
            try:
                rows.extend(self._read_parquet(uri))
            except Exception as exc:  # noqa: BLE001 - any unreadable source fails the job
                errors.append({"reason": "invalid", "location": uri, "message": f"Error while reading data: {exc}"})
        job = {
            "kind": "bigquery#job", "id": f"{ref.get('projectId')}:{self.location}.{job_id}",
            "jobReference": {**ref, "location": self.location}, "configuration": payload["configuration"],
            "status": {"state": "DONE"}, "statistics": {"creationTime": "0", "load": {}},
        }
        with self._lock:
            if errors:
                job["status"].update(errorResult=errors[0], errors=errors)
            else:
                self.tables.setdefault(key, []).extend(rows)
                job["statistics"]["load"] = {"outputRows": str(len(rows)), "inputFiles": str(len(load["sourceUris"]))}
            self.jobs[job_id] = job
        return 200, job

    def _read_parquet(self, uri: str) -> list[dict]:
        bucket, _, name = uri[len("gs://"):].partition("/")
        url = f"{self.gcs_url}/storage/v1/b/{bucket}/o/{urllib.parse.quote(name, safe='')}?alt=media"
        data = urllib.request.urlopen(url, timeout=10).read()
        return pq.read_table(io.BytesIO(data)).to_pylist()

    def load_jobs(self) -> list[dict]:
        return [body for method, _, body in self.requests if method == "POST" and body and "load" in body.get("configuration", {})]


def _error(code: int, status: str, message: str) -> dict:
    reason = {404: "notFound", 409: "duplicate", 503: "backendError"}.get(code, "invalid")
    return {"error": {"code": code, "status": status, "message": message, "errors": [{"reason": reason, "message": message}]}}
