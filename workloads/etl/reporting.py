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
from typing import Any, Mapping, Protocol

LOG = logging.getLogger(__name__)

SUMMARY_EVENT = "etl_run_summary"
LOG_NAME = "etl_run_summary"


class Reporter(Protocol):
    def report(self, summary: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class CloudLoggingReporter:
    project: str

    def report(self, summary: Mapping[str, Any]) -> None:
        from google.cloud import logging as cloud_logging
        from google.cloud.logging import Resource

        LOG.info(json.dumps(summary))
        client = cloud_logging.Client(project=self.project)
        client.logger(LOG_NAME).log_struct(
            dict(summary),
            severity="WARNING" if summary.get("quarantined_rows") or summary.get("rejected_files") else "INFO",
            resource=Resource(type="global", labels={"project_id": self.project}),
            labels={"pipeline": str(summary.get("pipeline", ""))},
        )


@dataclass(frozen=True)
class JsonlFileReporter:
    """Local stand-in for Cloud Logging: one JSON object per line, appended atomically."""

    path: str

    def report(self, summary: Mapping[str, Any]) -> None:
        line = json.dumps(summary)
        LOG.info(line)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        # One write() of one line in O_APPEND mode: concurrent runs cannot interleave lines.
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, (line + "\n").encode("utf-8"))
        finally:
            os.close(fd)


def read_run_log(path: str) -> list[dict[str, Any]]:
    """Summaries written by JsonlFileReporter, oldest first."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
