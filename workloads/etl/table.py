"""The destination table behind one small interface: BigQuery in production, JSONL in the demo.

A load appends the rows of one curated Parquet file and is keyed by a *load key* derived from
the landing file's URI and generation.  The key is what makes reruns safe: the same key is
applied at most once, however many times the load is attempted.

* ``BigQueryTable`` runs a load job whose job ID is ``<load key>_<attempt>``.  BigQuery refuses
  a second job with an existing ID, so a retry or a rerun first looks the job up: done and
  successful means already loaded; running means wait for it; failed means try the next
  attempt number.  Job metadata is kept for about six months, which bounds the window in which
  a rerun is recognised (the checkpoint normally makes reruns skip the file long before that).
* ``LocalJsonlTable`` is a directory holding one ``load-<key>.jsonl`` part per applied load,
  written atomically; the part's existence plays the role of BigQuery's job ID registry.
  Rows are stored in BigQuery's JSON representation (ISO timestamps, NUMERIC as strings).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator, Protocol

import pyarrow.parquet as pq

from .schema import jsonable

LOG = logging.getLogger(__name__)

# project:dataset.table (the contract's form); project IDs may contain '-' and a domain prefix.
_BQ_SPEC = re.compile(r"^(?P<project>[a-z0-9.:-]+?):(?P<dataset>\w+)\.(?P<table>[\w$-]+)$")
MAX_LOAD_ATTEMPTS = 5


class LoadFailed(Exception):
    """A load was attempted and failed; a retry will use the next attempt number."""


class TableSink(Protocol):
    def load(self, source_uri: str, load_key: str) -> bool:
        """Append the rows of the Parquet file at ``source_uri`` once per ``load_key``.

        Returns True if this call appended them, False if a load with the same key had
        already succeeded (then nothing is appended).
        """


def is_bigquery_spec(spec: str) -> bool:
    return bool(_BQ_SPEC.match(spec))


class BigQueryTable:
    """WRITE_APPEND / CREATE_NEVER Parquet load jobs with deterministic job IDs."""

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

    def _start_job(self, source_uri: str, job_id: str):
        from google.api_core.exceptions import Conflict
        from google.cloud import bigquery

        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
            create_disposition=bigquery.CreateDisposition.CREATE_NEVER,
        )
        try:
            return self.client.load_table_from_uri(
                source_uri,
                f"{self.project}.{self.dataset}.{self.table}",
                job_id=job_id,
                project=self.project,
                location=self._location,
                job_config=config,
            ), True
        except Conflict:
            # Another worker or run created the same job between our lookup and our insert.
            return self._get_job(job_id), False

    def load(self, source_uri: str, load_key: str) -> bool:
        from google.api_core.exceptions import GoogleAPICallError

        for attempt in range(MAX_LOAD_ATTEMPTS):
            job_id = f"{load_key}_{attempt}"
            job = self._get_job(job_id)
            created = False
            if job is None:
                job, created = self._start_job(source_uri, job_id)
            try:
                job.result()  # waits for a running job, ours or a previous run's
            except GoogleAPICallError:
                pass  # inspected below through error_result
            if job.error_result is None:
                LOG.info("load %s %s (%s rows)", job_id, "done" if created else "already done", job.output_rows)
                return created
            if created:
                raise LoadFailed(f"BigQuery load job {job_id} failed: {job.error_result}")
            LOG.warning("earlier load job %s had failed (%s); trying the next attempt", job_id, job.error_result)
        raise LoadFailed(f"{MAX_LOAD_ATTEMPTS} load attempts failed for {load_key}")


class LocalJsonlTable:
    """Directory-of-JSONL-parts stand-in for a BigQuery table (one atomic part per load key)."""

    def __init__(self, path: str):
        self.path = Path(path)

    def part_path(self, load_key: str) -> Path:
        return self.path / f"load-{load_key}.jsonl"

    def load(self, source_uri: str, load_key: str) -> bool:
        part = self.part_path(load_key)
        if part.exists():
            return False
        self.path.mkdir(parents=True, exist_ok=True)
        # Like a BigQuery load job, read the curated file where it is (a local path here).
        rows = pq.read_table(source_uri).to_pylist()
        fd, tmp_part = tempfile.mkstemp(prefix=".load-", dir=self.path)
        with os.fdopen(fd, "w") as out:
            for row in rows:
                out.write(json.dumps({k: jsonable(v) for k, v in row.items()}) + "\n")
        try:
            # link() fails if the part exists: two concurrent loads of one key append once.
            os.link(tmp_part, part)
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp_part)
        return True

    def rows(self) -> Iterator[dict]:
        """All rows of the table, in load order (for the demo and tests)."""
        parts = sorted(self.path.glob("load-*.jsonl"), key=lambda p: p.stat().st_mtime_ns) if self.path.is_dir() else []
        for part in parts:
            with open(part) as f:
                for line in f:
                    yield json.loads(line)


def table_for(spec: str) -> TableSink:
    """BigQuery for ``project:dataset.table``; a local JSONL table directory for a local path."""
    return BigQueryTable(spec) if is_bigquery_spec(spec) else LocalJsonlTable(spec)
