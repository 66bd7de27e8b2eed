"""Landing Parquet -> validated rows -> BigQuery + curated Parquet, invalid rows -> quarantine.

Shape of the Beam pipeline (one run handles every landing file not yet in the checkpoint)::

    Create -> ListPendingFiles -> Reshuffle -> ProcessFile (per file) -> ToList -> CommitRun

Per file, ProcessFile streams the Parquet in batches, validates each row against the schema,
writes the valid rows to ``<curated_prefix>/<path>.<generation>.parquet`` and the invalid ones
(original values + ``_error``) to ``<quarantine_prefix>/<path>.<generation>.jsonl``, then
loads the curated file into the table under a load key derived from (file URI, generation).
CommitRun runs once after all files: it advances the checkpoint (compare-and-swap), emits the
run summary and sends at most one alert mail.  These steps run inside the job because a Flex
Template launcher exits once the job is submitted: code after ``run()`` never runs there.

Delivery guarantee (what a crash at any point can and cannot do):

* No file is skipped: a file enters the checkpoint only in CommitRun, after every write for it
  has succeeded, so a crash before that leaves it pending for the next run.
* No file is loaded twice into BigQuery: each load is keyed by (pipeline, URI, generation) and a
  key is applied at most once (deterministic BigQuery job IDs, see table.py), so a rerun after
  a crash between the load and the checkpoint finds the load done and does not repeat it.
  This holds for reruns within BigQuery's job-history retention (~6 months).
* Curated and quarantine files have deterministic names and deterministic content for a given
  file generation, so rewriting them on a rerun replaces them with identical objects.
* Counts are reported once: the summary counts only the files this run added to the checkpoint,
  so files finished by a concurrent or crashed run are not counted twice.  The summary log
  entry and the mail are produced after the checkpoint commit and never fail the job; if the
  worker dies after committing but before reporting (rare), that run's summary is lost.
* A file overwritten in place is a new generation and is loaded again (its old rows stay).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import logging
import os
import re
import tempfile
from typing import Any, Iterator, Mapping

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions, StandardOptions, WorkerOptions
from apache_beam.runners.runner import PipelineState

from . import checkpoint
from .alerts import mailer_for, send_summary_alert
from .reporting import SUMMARY_EVENT, CloudLoggingReporter, JsonlFileReporter
from .schema import Field, arrow_schema, jsonable, parse_schema, validate_row
from .vectorized import readable, validate_batch
from .storage import ObjectChanged, ObjectRef, join_uri, store_for
from .table import is_bigquery_spec, table_for
from workloads.launcher.launch_request import is_landing_object

LOG = logging.getLogger(__name__)

# The Flex Template parameters (metadata.json lists exactly these); all are strings.
PARAMETERS: dict[str, str] = {
    "pipeline": "Pipeline name, e.g. orders.",
    "landing_prefix": "Folder of incoming Parquet files: gs://<landing-bucket>/<pipeline>/.",
    "schema": "JSON list of fields {name, type, mode, min, max, description}.",
    "output_table": "Destination BigQuery table, project:dataset.table (appended to, never created).",
    "curated_prefix": "Folder for validated Parquet: gs://<curated-bucket>/<pipeline>/.",
    "quarantine_prefix": "Folder for rejected rows (JSONL with _error): gs://<quarantine-bucket>/<pipeline>/.",
    "checkpoint_uri": "Checkpoint object: gs://<control-bucket>/checkpoints/<pipeline>.json.",
    "alert_secret": "Secret Manager version holding the SendGrid API key: projects/<p>/secrets/<id>/versions/latest.",
    "alert_to": "Comma-separated recipients of the quarantine alert.",
    "alert_from": "Sender address of the quarantine alert (a SendGrid verified sender).",
}
REQUIRED_PARAMETERS = (
    "pipeline", "landing_prefix", "schema", "output_table", "curated_prefix", "quarantine_prefix", "checkpoint_uri",
)
# Pipeline names become part of object paths, BigQuery job IDs and Dataflow job names.
_PIPELINE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
BATCH_ROWS = 10_000
SUMMARY_FILES_LIMIT = 200  # keep the log entry well under Cloud Logging's 256 KiB


class EtlOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        for name, help_text in PARAMETERS.items():
            parser.add_argument(f"--{name}", default=None, help=help_text)
        # Local runs only (the demo and tests); the Flex Template does not expose them.
        parser.add_argument("--alert_outbox", default=None, help="Write alert requests to this folder instead of sending.")
        parser.add_argument("--run_log", default=None, help="Append run summaries to this JSONL file instead of Cloud Logging.")


# One rule for "is this a data file": the launcher's, so the ETL and the launcher always agree.
is_landing_file = is_landing_object


@dataclasses.dataclass(frozen=True)
class EtlConfig:
    """Validated run parameters; picklable, so each DoFn carries its own copy to the workers."""

    pipeline: str
    landing_prefix: str
    fields: tuple[Field, ...]
    output_table: str
    curated_prefix: str
    quarantine_prefix: str
    checkpoint_uri: str
    alert_secret: str = ""
    alert_to: str = ""
    alert_from: str = ""
    alert_outbox: str | None = None
    run_log: str | None = None
    log_project: str | None = None

    @classmethod
    def from_options(cls, options: PipelineOptions) -> "EtlConfig":
        etl = options.view_as(EtlOptions)
        missing = [name for name in REQUIRED_PARAMETERS if not getattr(etl, name)]
        if missing:
            raise ValueError(f"missing required parameter(s): {', '.join(missing)}")
        if not _PIPELINE_NAME.match(etl.pipeline):
            raise ValueError(f"pipeline {etl.pipeline!r} must match {_PIPELINE_NAME.pattern}")
        locations = {
            name: getattr(etl, name) for name in ("landing_prefix", "curated_prefix", "quarantine_prefix", "checkpoint_uri")
        }
        runner = (options.view_as(StandardOptions).runner or "").lower()
        if "dataflow" in runner:
            # Local stand-ins exist for the demo; on Dataflow they would silently write to a worker's disk.
            not_gcs = [name for name, value in locations.items() if not value.startswith("gs://")]
            if not_gcs or not is_bigquery_spec(etl.output_table):
                raise ValueError(f"on Dataflow, locations must be gs:// and output_table a BigQuery table: {not_gcs}")
            if etl.alert_outbox or etl.run_log:
                raise ValueError("alert_outbox and run_log are for local runs only")
        else:
            locations = {k: v if v.startswith("gs://") else os.path.abspath(v) for k, v in locations.items()}
        prefixes = {k: (v.rstrip("/") + "/" if k != "checkpoint_uri" else v) for k, v in locations.items()}
        log_project = options.view_as(GoogleCloudOptions).project
        if not log_project and is_bigquery_spec(etl.output_table):
            log_project = etl.output_table.split(":", 1)[0]
        return cls(
            pipeline=etl.pipeline,
            fields=parse_schema(etl.schema),
            output_table=etl.output_table if is_bigquery_spec(etl.output_table) else os.path.abspath(etl.output_table),
            alert_secret=etl.alert_secret or "",
            alert_to=etl.alert_to or "",
            alert_from=etl.alert_from or "",
            alert_outbox=etl.alert_outbox,
            run_log=etl.run_log,
            log_project=log_project,
            **prefixes,
        )

    def relative_name(self, ref: ObjectRef) -> str:
        if not ref.uri.startswith(self.landing_prefix):
            raise ValueError(f"{ref.uri} is not under {self.landing_prefix}")
        return ref.uri[len(self.landing_prefix):]

    def _output_name(self, ref: ObjectRef, suffix: str) -> str:
        stem = self.relative_name(ref)
        stem = stem[: -len(".parquet")] if stem.lower().endswith(".parquet") else stem
        return f"{stem}.{ref.generation}{suffix}"

    def curated_uri(self, ref: ObjectRef) -> str:
        return join_uri(self.curated_prefix, self._output_name(ref, ".parquet"))

    def quarantine_uri(self, ref: ObjectRef, suffix: str = ".jsonl") -> str:
        return join_uri(self.quarantine_prefix, self._output_name(ref, suffix))

    def load_key(self, ref: ObjectRef) -> str:
        """Stable key of one file version's load (a valid BigQuery job ID prefix)."""
        digest = hashlib.sha256(f"{ref.uri}#{ref.generation}".encode()).hexdigest()[:40]
        return f"etl_{self.pipeline.replace('-', '_')}_{digest}"

    def reporter(self):
        if self.run_log:
            return JsonlFileReporter(self.run_log)
        if not self.log_project:
            raise ValueError("no GCP project known for the run summary log (set --project)")
        return CloudLoggingReporter(self.log_project)

    def mailer(self):
        return mailer_for(self.alert_secret, self.alert_from, self.alert_to, self.alert_outbox)


@dataclasses.dataclass
class SplitResult:
    valid_rows: int = 0
    quarantined_rows: int = 0
    reasons: collections.Counter = dataclasses.field(default_factory=collections.Counter)


class UnreadableFile(Exception):
    """The landing file cannot be read as Parquet."""


def _read_batches(source_path: str) -> Iterator[pa.RecordBatch]:
    """A Parquet file, batch by batch; any failure to *read* becomes UnreadableFile.

    Only reading is guarded: a failure while writing outputs is ours, not the file's, and must
    fail the run (and be retried) rather than count against the file.
    """
    try:
        for batch in pq.ParquetFile(source_path).iter_batches(batch_size=BATCH_ROWS):
            yield batch
    except (pa.ArrowException, OSError) as exc:
        raise UnreadableFile(str(exc)) from exc


def split_file(
    source_path: str,
    fields: tuple[Field, ...],
    curated_path: str,
    quarantine_path: str,
    source_uri: str,
    generation: int,
    vectorized: bool = True,
) -> SplitResult:
    """Validate one Parquet file batch by batch into a curated Parquet and a quarantine JSONL.

    Memory stays bounded by BATCH_ROWS whatever the file size.  An output file is only
    created when it gets rows.  ``vectorized=False`` runs the per-row reference validator
    (schema.validate_row) instead of the Arrow one: same output, kept for the benchmark's
    before/after and as the oracle of the tests.
    """
    result = SplitResult()
    schema = arrow_schema(fields)
    writer: pq.ParquetWriter | None = None
    quarantine = None
    row_number = 0
    try:
        for batch in _read_batches(source_path):
            if vectorized:
                checked = validate_batch(batch, fields)
                valid = pa.Table.from_batches([checked.valid]) if checked.valid.num_rows else None
                invalid = [(row_number + i, row, violations) for i, row, violations in checked.invalid]
            else:
                valid, invalid = _validate_rows(batch, fields, schema, row_number)
            for number, row, violations in invalid:
                if quarantine is None:
                    quarantine = open(quarantine_path, "w", encoding="utf-8")
                record = {key: jsonable(value) for key, value in row.items()}
                record.update(
                    _error="; ".join(v.reason for v in violations),
                    _source_file=source_uri,
                    _source_generation=str(generation),
                    _row_number=number,
                )
                quarantine.write(json.dumps(record) + "\n")
                result.quarantined_rows += 1
                result.reasons.update(f"{v.field}: {v.code}" for v in violations)
            if valid is not None and valid.num_rows:
                if writer is None:
                    writer = pq.ParquetWriter(curated_path, schema)
                writer.write_table(valid)
                result.valid_rows += valid.num_rows
            row_number += batch.num_rows
    finally:
        if writer is not None:
            writer.close()
        if quarantine is not None:
            quarantine.close()
    return result


def _validate_rows(batch: pa.RecordBatch, fields, schema: pa.Schema, first_row: int):
    """The per-row reference path (what every run did before the vectorised validator)."""
    valid, invalid = [], []
    for i, row in enumerate(readable(batch).to_pylist()):
        clean, violations = validate_row(row, fields)
        if clean is not None:
            valid.append(clean)
        else:
            invalid.append((first_row + i, row, violations))
    return (pa.Table.from_pylist(valid, schema=schema) if valid else None), invalid


class ListPendingFiles(beam.DoFn):
    """Emit the landing files whose current generation is not in the checkpoint."""

    def __init__(self, config: EtlConfig):
        self.config = config

    def process(self, _unused) -> Iterator[ObjectRef]:
        cfg = self.config
        state = checkpoint.load(store_for(cfg.checkpoint_uri), cfg.checkpoint_uri, cfg.pipeline)
        listing = [ref for ref in store_for(cfg.landing_prefix).list(cfg.landing_prefix) if is_landing_file(cfg.relative_name(ref))]
        todo = checkpoint.pending(state, listing)
        LOG.info("%s: %d landing file(s), %d pending", cfg.pipeline, len(listing), len(todo))
        yield from todo


class ProcessFile(beam.DoFn):
    """Validate one landing file, write curated + quarantine outputs and load the table."""

    def __init__(self, config: EtlConfig):
        self.config = config
        self.valid_rows = Metrics.counter("etl", "valid_rows")
        self.quarantined_rows = Metrics.counter("etl", "quarantined_rows")
        self.files = Metrics.counter("etl", "files_processed")

    def setup(self):
        self.table = table_for(self.config.output_table)

    def process(self, ref: ObjectRef) -> Iterator[dict[str, Any]]:
        cfg = self.config
        outcome: dict[str, Any] = {
            "uri": ref.uri, "generation": str(ref.generation), "status": "loaded",
            "valid_rows": 0, "quarantined_rows": 0, "curated_uri": None, "quarantine_uri": None,
            "reasons": {}, "error": None, "loaded_by_this_run": False,
        }
        with tempfile.TemporaryDirectory(prefix="etl-") as tmp:
            source = os.path.join(tmp, "source.parquet")
            try:
                store_for(ref.uri).download(ref, source)
            except ObjectChanged as exc:
                # Overwritten or deleted since listing; the new version has its own event and run.
                LOG.warning("skipping %s: %s", ref.uri, exc)
                yield {**outcome, "status": "superseded"}
                return
            curated, quarantine = os.path.join(tmp, "curated.parquet"), os.path.join(tmp, "quarantine.jsonl")
            try:
                result = split_file(source, cfg.fields, curated, quarantine, ref.uri, ref.generation)
            except UnreadableFile as exc:
                # Not a readable Parquet file: retrying cannot help, so it is set aside and committed.
                rejected_uri = cfg.quarantine_uri(ref, ".rejected.parquet")
                store_for(rejected_uri).upload(source, rejected_uri)
                LOG.error("rejected unreadable file %s: %s", ref.uri, exc)
                yield {**outcome, "status": "rejected", "error": f"unreadable Parquet: {exc}"[:500], "quarantine_uri": rejected_uri}
                return
            if result.quarantined_rows:
                outcome["quarantine_uri"] = cfg.quarantine_uri(ref)
                store_for(outcome["quarantine_uri"]).upload(quarantine, outcome["quarantine_uri"])
            if result.valid_rows:
                outcome["curated_uri"] = cfg.curated_uri(ref)
                store_for(outcome["curated_uri"]).upload(curated, outcome["curated_uri"])
                outcome["loaded_by_this_run"] = self.table.load(outcome["curated_uri"], cfg.load_key(ref))
        outcome.update(valid_rows=result.valid_rows, quarantined_rows=result.quarantined_rows, reasons=dict(result.reasons))
        self.valid_rows.inc(result.valid_rows)
        self.quarantined_rows.inc(result.quarantined_rows)
        self.files.inc()
        yield outcome


def run_summary(pipeline: str, outcomes: list[Mapping[str, Any]], committed: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The structured summary of a run, counting only the files this run committed."""
    return {
        "event": SUMMARY_EVENT,
        "pipeline": pipeline,
        "processed_files": len(committed),
        "valid_rows": sum(o["valid_rows"] for o in committed),
        "quarantined_rows": sum(o["quarantined_rows"] for o in committed),
        "rejected_files": sum(1 for o in committed if o["status"] == "rejected"),
        "skipped_files": len(outcomes) - len(committed),
        "files": [
            {k: o[k] for k in ("uri", "generation", "valid_rows", "quarantined_rows", "quarantine_uri", "reasons", "error")}
            for o in committed
        ],
    }


class CommitRun(beam.DoFn):
    """Once per run, after every file's writes: advance the checkpoint, then report and alert."""

    def __init__(self, config: EtlConfig):
        self.config = config

    def process(self, outcomes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        cfg = self.config
        committable = [o for o in outcomes if o["status"] != "superseded"]
        committed = checkpoint.commit(store_for(cfg.checkpoint_uri), cfg.checkpoint_uri, cfg.pipeline, committable)
        summary = run_summary(cfg.pipeline, outcomes, committed)
        logged = dict(summary)
        if len(logged["files"]) > SUMMARY_FILES_LIMIT:
            logged.update(files=logged["files"][:SUMMARY_FILES_LIMIT], files_truncated=True)
        try:
            cfg.reporter().report(logged)
        except Exception:  # noqa: BLE001 - the data is committed; a lost log line must not fail the job
            LOG.exception("could not write the run summary: %s", json.dumps(logged))
        send_summary_alert(cfg.mailer(), summary)
        yield summary


def build(p: beam.Pipeline, config: EtlConfig) -> beam.PCollection:
    """Attach the ETL to a pipeline; returns the PCollection holding the single run summary."""
    return (
        p
        | "Start" >> beam.Create([config.pipeline])
        | "ListPendingFiles" >> beam.ParDo(ListPendingFiles(config))
        # Break fusion with the single listing element so files spread over all workers.
        | "SpreadFiles" >> beam.Reshuffle()
        | "ProcessFiles" >> beam.ParDo(ProcessFile(config))
        | "CollectOutcomes" >> beam.combiners.ToList()
        | "CommitAndReport" >> beam.ParDo(CommitRun(config))
    )


def run(argv: list[str] | None = None):
    """Build and run the pipeline; waits for completion except on Dataflow (the launcher must exit)."""
    options = PipelineOptions(argv)
    config = EtlConfig.from_options(options)
    on_dataflow = "dataflow" in (options.view_as(StandardOptions).runner or "").lower()
    worker = options.view_as(WorkerOptions)
    if on_dataflow and not worker.sdk_container_image and os.environ.get("ETL_SDK_CONTAINER_IMAGE"):
        # The template image doubles as the worker image (dependencies preinstalled, no pip at start-up,
        # which private-IP workers without NAT could not do anyway).
        worker.sdk_container_image = os.environ["ETL_SDK_CONTAINER_IMAGE"]
    pipeline = beam.Pipeline(options=options)
    build(pipeline, config)
    result = pipeline.run()
    if not on_dataflow:
        state = result.wait_until_finish()
        if state != PipelineState.DONE:
            raise RuntimeError(f"pipeline finished in state {state}")
    return result
