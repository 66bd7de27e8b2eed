"""The one structured summary log entry per run.

The infrastructure counts quarantined rows with a log-based metric on
``jsonPayload.event="etl_run_summary"`` extracting ``jsonPayload.quarantined_rows``.  On
Dataflow, what a worker prints or logs ends up as a *string* in ``jsonPayload.message``, which
such a filter cannot see, so production writes the summary with the Cloud Logging API as a
structured entry (log name ``etl_run_summary``, resource ``global``, label ``pipeline``), where
the summary's keys are top-level ``jsonPayload`` fields.  Locally the entry is appended to a
JSONL file instead.  Both also go to the Python log for humans.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

LOG = logging.getLogger(__name__)

SUMMARY_EVENT = "etl_run_summary"
LOG_NAME = "etl_run_summary"
FILE_EVENT = "etl_file_loaded"
FILE_LOG_NAME = "etl_file_loaded"
OUTCOMES = ("succeeded", "partial", "failed")  # of a run summary; the platform's SLO metrics read them


class Reporter(Protocol):
    def report(self, summary: Mapping[str, Any], files: Sequence[Mapping[str, Any]] = ()) -> None:
        """One ``etl_run_summary`` entry and one ``etl_file_loaded`` entry per committed file."""


FILE_BATCH = 500


def severity(summary: Mapping[str, Any]) -> str:
    if summary.get("outcome") == "failed":
        return "ERROR"
    if summary.get("quarantined_rows") or summary.get("rejected_files") or summary.get("outcome") == "partial":
        return "WARNING"
    return "INFO"


@dataclass(frozen=True)
class CloudLoggingReporter:
    project: str

    def report(self, summary: Mapping[str, Any], files: Sequence[Mapping[str, Any]] = ()) -> None:
        from google.cloud import logging as cloud_logging
        from google.cloud.logging import Resource

        LOG.info(json.dumps(summary))
        client = cloud_logging.Client(project=self.project)
        resource = Resource(type="global", labels={"project_id": self.project})
        labels = {"pipeline": str(summary.get("pipeline", ""))}
        # The per-file events first, in batches (one API call per batch, not per file).
        for start in range(0, len(files), FILE_BATCH):
            batch = client.logger(FILE_LOG_NAME).batch()
            for event in files[start:start + FILE_BATCH]:
                batch.log_struct(dict(event), severity="INFO", resource=resource, labels=labels)
            batch.commit()
        client.logger(LOG_NAME).log_struct(dict(summary), severity=severity(summary), resource=resource, labels=labels)


@dataclass(frozen=True)
class JsonlFileReporter:
    """Local stand-in for Cloud Logging: one JSON object per line, appended atomically."""

    path: str

    def report(self, summary: Mapping[str, Any], files: Sequence[Mapping[str, Any]] = ()) -> None:
        line = json.dumps(summary)
        LOG.info(line)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        text = "".join(json.dumps(dict(f)) + "\n" for f in files) + line + "\n"
        # One write() in O_APPEND mode: concurrent runs cannot interleave lines.
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, text.encode("utf-8"))
        finally:
            os.close(fd)


def read_run_log(path: str, event: str | None = SUMMARY_EVENT) -> list[dict[str, Any]]:
    """Entries written by JsonlFileReporter (run summaries by default), oldest first."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        entries = [json.loads(line) for line in f if line.strip()]
    return [e for e in entries if event is None or e.get("event") == event]
