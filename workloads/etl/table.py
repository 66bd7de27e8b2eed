"""The destination table behind one small interface: BigQuery in production, JSONL in the demo.

A run appends the curated Parquet files of all the files it loads with **one** load job, under a
job ID the run derives deterministically (run id + the exact file versions, see pipeline.py)
and records in its state *before* creating the job. That record, not the ID alone, is what
makes loads idempotent: a rerun, a retried bundle or the next run looks the recorded job up,
and creates it only if it does not exist, so each recorded batch is appended at most once.

* ``BigQueryTable`` runs WRITE_APPEND / CREATE_NEVER Parquet load jobs. Creating a job whose ID
  exists answers 409 Conflict; that means "someone (a retry of this very call) created it":
  the existing job is fetched and awaited, never ignored.
* ``LocalJsonlTable`` is a directory with one ``load-<job id>.jsonl`` part per successful job,
  written atomically (``failed-<job id>.json`` for a failed one); the files play the role of
  BigQuery's job registry. Rows are stored in BigQuery's JSON representation.

Job metadata is kept by BigQuery for about six months; a recorded job is resolved by the next
run (minutes later), far inside that window.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence

import pyarrow.parquet as pq

from .schema import jsonable

LOG = logging.getLogger(__name__)

# project:dataset.table (the contract's form); project IDs may contain '-' and a domain prefix.
_BQ_SPEC = re.compile(r"^(?P<project>[a-z0-9.:-]+?):(?P<dataset>\w+)\.(?P<table>[\w$-]+)$")
# After a 409 the job exists; the lookup may briefly miss it (eventual consistency): retry a little.
CONFLICT_LOOKUPS = 5


@dataclasses.dataclass(frozen=True)
class LoadResult:
    """A finished load job: ``ok``, rows appended, and BigQuery's errors (reason, location, message)."""

    job_id: str
    ok: bool
    output_rows: int = 0
    errors: tuple[dict[str, Any], ...] = ()

    def sources_blamed(self, source_uris: Sequence[str]) -> list[str]:
        """The source files the errors name (BigQuery puts the file in ``location`` or the message)."""
        text = [f"{e.get('location', '')} {e.get('message', '')}" for e in self.errors]
        return [uri for uri in source_uris if any(uri in t for t in text)]

    @property
    def error_text(self) -> str:
        return "; ".join(f"{e.get('reason', '')}: {e.get('message', '')}" for e in self.errors)[:1000]


class TableSink(Protocol):
    def load(self, source_uris: Sequence[str], job_id: str) -> LoadResult:
        """Append the Parquet files with load job ``job_id``, or await/return it if it already exists."""

    def find(self, job_id: str) -> LoadResult | None:
        """The finished job ``job_id`` (awaited if still running), or None if it was never created."""


def is_bigquery_spec(spec: str) -> bool:
    return bool(_BQ_SPEC.match(spec))


class BigQueryTable:
    """WRITE_APPEND / CREATE_NEVER Parquet load jobs with caller-chosen job IDs."""

    def __init__(self, spec: str):
        match = _BQ_SPEC.match(spec)
        if not match:
            raise ValueError(f"output_table {spec!r} is not of the form project:dataset.table")
        self.project, self.dataset, self.table = match["project"], match["dataset"], match["table"]
        self._client = None
        self._location = None

    def __getstate__(self):
        return {**self.__dict__, "_client": None, "_location": None}

    @property
    def client(self):
        if self._client is None:
            from google.cloud import bigquery

            self._client = bigquery.Client(project=self.project)
            # Jobs live in the dataset's location; get_job needs it to find them.
            self._location = self._client.get_dataset(f"{self.project}.{self.dataset}").location
        return self._client

    def _get_job(self, job_id: str):
        from google.api_core.exceptions import NotFound

        try:
            return self.client.get_job(job_id, project=self.project, location=self._location)
        except NotFound:
            return None

    def _start_job(self, source_uris: Sequence[str], job_id: str):
        """Create the job; on 409 (it exists: a retry raced us) return the existing one, never None."""
        from google.api_core.exceptions import Conflict
        from google.cloud import bigquery

        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
            create_disposition=bigquery.CreateDisposition.CREATE_NEVER,
        )
        try:
            return self.client.load_table_from_uri(
                list(source_uris),
                f"{self.project}.{self.dataset}.{self.table}",
                job_id=job_id,
                project=self.project,
                location=self._location,
                job_config=config,
            )
        except Conflict:
            for attempt in range(CONFLICT_LOOKUPS):
                job = self._get_job(job_id)
                if job is not None:
                    return job
                time.sleep(0.2 * 2**attempt)
            raise RuntimeError(f"BigQuery answered 409 for job {job_id} but the job cannot be read") from None

    def _finished(self, job) -> LoadResult:
        from google.api_core.exceptions import GoogleAPICallError

        try:
            job.result()  # waits for a running job, ours or a previous attempt's
        except GoogleAPICallError:
            pass  # inspected below through error_result / errors
        if job.error_result is None:
            return LoadResult(job.job_id, True, int(job.output_rows or 0))
        errors = tuple(dict(e) for e in (job.errors or [job.error_result]))
        return LoadResult(job.job_id, False, 0, errors)

    def load(self, source_uris: Sequence[str], job_id: str) -> LoadResult:
        job = self._get_job(job_id) or self._start_job(source_uris, job_id)
        result = self._finished(job)
        LOG.info("load job %s: %s", job_id, "ok, %d rows" % result.output_rows if result.ok else result.error_text)
        return result

    def find(self, job_id: str) -> LoadResult | None:
        job = self._get_job(job_id)
        return None if job is None else self._finished(job)


class LocalJsonlTable:
    """Directory-of-JSONL-parts stand-in for a BigQuery table (one atomic part per load job)."""

    def __init__(self, path: str):
        self.path = Path(path)

    def part_path(self, job_id: str) -> Path:
        return self.path / f"load-{job_id}.jsonl"

    def _failure_path(self, job_id: str) -> Path:
        return self.path / f"failed-{job_id}.json"

    def find(self, job_id: str) -> LoadResult | None:
        part, failure = self.part_path(job_id), self._failure_path(job_id)
        if part.exists():
            with open(part) as f:
                return LoadResult(job_id, True, sum(1 for _ in f))
        if failure.exists():
            return LoadResult(job_id, False, 0, tuple(json.loads(failure.read_text())))
        return None

    def load(self, source_uris: Sequence[str], job_id: str) -> LoadResult:
        done = self.find(job_id)
        if done is not None:
            return done
        self.path.mkdir(parents=True, exist_ok=True)
        rows = []
        for uri in source_uris:
            # Like a load job, read the curated files where they are (local paths here); a file
            # that cannot be read fails the whole job, naming the file, as BigQuery does.
            try:
                rows.extend(pq.read_table(uri).to_pylist())
            except Exception as exc:  # noqa: BLE001 - any read failure is the job's error
                errors = [{"reason": "invalid", "location": uri, "message": f"Error while reading data: {exc}"[:500]}]
                self._failure_path(job_id).write_text(json.dumps(errors))
                return LoadResult(job_id, False, 0, tuple(errors))
        fd, tmp_part = tempfile.mkstemp(prefix=".load-", dir=self.path)
        with os.fdopen(fd, "w") as out:
            for row in rows:
                out.write(json.dumps({k: jsonable(v) for k, v in row.items()}) + "\n")
        try:
            # link() fails if the part exists: two concurrent loads of one job append once.
            os.link(tmp_part, self.part_path(job_id))
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp_part)
        return LoadResult(job_id, True, len(rows))

    def rows(self) -> Iterator[dict]:
        """All rows of the table, in load order (for the demo and tests)."""
        parts = sorted(self.path.glob("load-*.jsonl"), key=lambda p: p.stat().st_mtime_ns) if self.path.is_dir() else []
        for part in parts:
            with open(part) as f:
                for line in f:
                    yield json.loads(line)

    def load_jobs(self) -> list[str]:
        """IDs of every job run against this table, failed ones included (each is a table modification)."""
        if not self.path.is_dir():
            return []
        return sorted(p.name.split("-", 1)[1].rsplit(".", 1)[0] for p in self.path.glob("*-*.json*") if not p.name.startswith("."))


def table_for(spec: str) -> TableSink:
    """BigQuery for ``project:dataset.table``; a local JSONL table directory for a local path."""
    return BigQueryTable(spec) if is_bigquery_spec(spec) else LocalJsonlTable(spec)
