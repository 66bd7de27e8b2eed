"""Landing Parquet -> validated rows -> BigQuery + curated Parquet, invalid rows -> quarantine.

Shape of the Beam pipeline (one run handles a bounded batch of the pending landing files)::

    Create -> PlanRun -> Reshuffle -> ProcessFile (per file) -> ToList -> CommitRun
                 \\-- plan (side input) ----------------------------------/

PlanRun (once): reads the pipeline's state object, resolves load batches recorded by earlier
runs (write-ahead records, see checkpoint.py), archives files whose archive step an earlier run
did not finish, lists the landing folder and picks the oldest pending files up to the run's
bounds (``max_files_per_run``, ``max_bytes_per_run``); the rest is the backlog.

ProcessFile (per file, in parallel): validates the file batch by batch (vectorised, see
vectorized.py) into ``<curated_prefix>/<path>.<generation>.parquet`` and
``<quarantine_prefix>/<path>.<generation>.jsonl``. A file that cannot be read or parsed counts
one failed attempt; a file at ``max_file_attempts`` is quarantined whole
(``<path>.<generation>.rejected.parquet`` + ``.error.json``) and committed.

CommitRun (once): records the run's load batch and its job id in the state (claiming those file
versions), runs **one** BigQuery load job for all of them, then commits the files, archives
them (landing -> ``archive_prefix``), writes the run summary and one ``etl_file_loaded`` event
per committed file, mails at most one alert, and asks for a follow-up run if it left work.
These steps run inside the job because a Flex Template launcher exits once the job is
submitted: code after ``run()`` never runs there.

The retry and idempotency contract is written out in workloads/README.md.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import re
import tempfile
import uuid
from typing import Any, Iterator, Mapping

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions, StandardOptions, WorkerOptions
from apache_beam.runners.runner import PipelineState

from . import checkpoint
from .alerts import mailer_for, send_summary_alert
from .followups import follow_ups_for
from .reporting import FILE_EVENT, SUMMARY_EVENT, CloudLoggingReporter, JsonlFileReporter
from .schema import Field, arrow_schema, jsonable, parse_schema, validate_row
from .storage import ObjectChanged, ObjectRef, join_uri, store_for
from .table import LoadResult, is_bigquery_spec, table_for
from .vectorized import readable, validate_batch
from workloads.launcher.launch_request import is_landing_object, parse_time, rfc3339, utc_now

LOG = logging.getLogger(__name__)

# The Flex Template parameters (metadata.json lists exactly these); all are strings.
PARAMETERS: dict[str, str] = {
    "pipeline": "Pipeline name, e.g. orders.",
    "landing_prefix": "Folder of incoming Parquet files: gs://<landing-bucket>/<pipeline>/.",
    "schema": "JSON list of fields {name, type, mode, min, max, description}.",
    "output_table": "Destination BigQuery table, project:dataset.table (appended to, never created).",
    "curated_prefix": "Folder for validated Parquet: gs://<curated-bucket>/<pipeline>/.",
    "quarantine_prefix": "Folder for rejected rows (JSONL with _error): gs://<quarantine-bucket>/<pipeline>/.",
    "checkpoint_uri": "State object: gs://<control-bucket>/checkpoints/<pipeline>.json.",
    "alert_secret": "Secret Manager version holding the SendGrid API key: projects/<p>/secrets/<id>/versions/latest.",
    "alert_to": "Comma-separated recipients of the quarantine alert.",
    "alert_from": "Sender address of the quarantine alert (a SendGrid verified sender).",
    "archive_prefix": "Where committed landing files are moved: gs://<landing-bucket>/_archive/<pipeline>/ (empty: kept in place).",
    "max_files_per_run": "At most this many landing files per run (the rest waits for the follow-up run).",
    "max_bytes_per_run": "At most this many MiB of landing files per run (a larger single file still goes alone).",
    "max_file_attempts": "A file that fails to read, parse or load this many times is quarantined whole.",
    "max_loads_per_day": "At most this many load jobs per day into the table (runs closer together defer their load).",
    "followup_queue": "Cloud Tasks queue for follow-up run requests: projects/<p>/locations/<l>/queues/<q>.",
}
REQUIRED_PARAMETERS = (
    "pipeline", "landing_prefix", "schema", "output_table", "curated_prefix", "quarantine_prefix", "checkpoint_uri",
)
DEFAULTS = {"max_files_per_run": 5000, "max_bytes_per_run": 10240, "max_file_attempts": 3, "max_loads_per_day": 0}
# Pipeline names become part of object paths, BigQuery job IDs and Dataflow job names.
_PIPELINE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
BATCH_ROWS = 10_000
SUMMARY_FILES_LIMIT = 200  # keep the log entry well under Cloud Logging's 256 KiB
MIB = 1 << 20


class EtlOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        for name, help_text in PARAMETERS.items():
            parser.add_argument(f"--{name}", default=None, help=help_text)
        # Local runs only (the demo and tests); the Flex Template does not expose them.
        parser.add_argument("--alert_outbox", default=None, help="Write alert requests to this folder instead of sending.")
        parser.add_argument("--run_log", default=None, help="Append run summaries to this JSONL file instead of Cloud Logging.")
        parser.add_argument("--followup_outbox", default=None, help="Write follow-up requests to this folder instead of Cloud Tasks.")


# One rule for "is this a data file": the launcher's, so the ETL and the launcher always agree.
is_landing_file = is_landing_object


def _positive_int(name: str, value: str | None) -> int:
    if value in (None, ""):
        return DEFAULTS[name]
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if number < (0 if name == "max_loads_per_day" else 1):
        raise ValueError(f"{name} must be at least {0 if name == 'max_loads_per_day' else 1}, got {number}")
    return number


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
    archive_prefix: str = ""
    max_files_per_run: int = DEFAULTS["max_files_per_run"]
    max_bytes_per_run: int = DEFAULTS["max_bytes_per_run"]
    max_file_attempts: int = DEFAULTS["max_file_attempts"]
    max_loads_per_day: int = DEFAULTS["max_loads_per_day"]
    followup_queue: str = ""
    alert_outbox: str | None = None
    run_log: str | None = None
    followup_outbox: str | None = None
    log_project: str | None = None
    on_dataflow: bool = False
    local_run_id: str = ""

    @classmethod
    def from_options(cls, options: PipelineOptions) -> "EtlConfig":
        etl = options.view_as(EtlOptions)
        missing = [name for name in REQUIRED_PARAMETERS if not getattr(etl, name)]
        if missing:
            raise ValueError(f"missing required parameter(s): {', '.join(missing)}")
        if not _PIPELINE_NAME.match(etl.pipeline):
            raise ValueError(f"pipeline {etl.pipeline!r} must match {_PIPELINE_NAME.pattern}")
        names = ("landing_prefix", "curated_prefix", "quarantine_prefix", "checkpoint_uri", "archive_prefix")
        locations = {name: getattr(etl, name) for name in names if getattr(etl, name)}
        runner = (options.view_as(StandardOptions).runner or "").lower()
        on_dataflow = "dataflow" in runner
        if on_dataflow:
            # Local stand-ins exist for the demo; on Dataflow they would silently write to a worker's disk.
            not_gcs = [name for name, value in locations.items() if not value.startswith("gs://")]
            if not_gcs or not is_bigquery_spec(etl.output_table):
                raise ValueError(f"on Dataflow, locations must be gs:// and output_table a BigQuery table: {not_gcs}")
            if etl.alert_outbox or etl.run_log or etl.followup_outbox:
                raise ValueError("alert_outbox, run_log and followup_outbox are for local runs only")
        else:
            locations = {k: v if v.startswith("gs://") else os.path.abspath(v) for k, v in locations.items()}
        prefixes = {k: (v.rstrip("/") + "/" if k != "checkpoint_uri" else v) for k, v in locations.items()}
        if prefixes.get("archive_prefix", "").startswith(prefixes["landing_prefix"]):
            raise ValueError("archive_prefix must not be inside landing_prefix (archived files would be listed again)")
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
            followup_queue=etl.followup_queue or "",
            alert_outbox=etl.alert_outbox,
            run_log=etl.run_log,
            followup_outbox=etl.followup_outbox,
            log_project=log_project,
            on_dataflow=on_dataflow,
            local_run_id="" if on_dataflow else str(uuid.uuid4()),
            **{name: _positive_int(name, getattr(etl, name)) for name in DEFAULTS},
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

    def archive_uri(self, ref: ObjectRef) -> str:
        return join_uri(self.archive_prefix, self._output_name(ref, ".parquet"))

    def load_job_id(self, run_id: str, files: list[Mapping[str, Any]]) -> str:
        """Deterministic job id of a run's load batch: the same run and file versions give the same id."""
        key = run_id + "\0" + "\0".join(sorted(f"{f['uri']}#{f['generation']}" for f in files))
        return f"etl_{self.pipeline.replace('-', '_')}_{hashlib.sha256(key.encode()).hexdigest()[:40]}"

    @property
    def load_interval(self) -> dt.timedelta:
        return dt.timedelta(seconds=86400 / self.max_loads_per_day) if self.max_loads_per_day else dt.timedelta(0)

    def run_id(self) -> str:
        """The Dataflow job id on Dataflow (from the worker's metadata server), else this run's uuid."""
        if self.on_dataflow:
            from apache_beam.io.gcp.gce_metadata_util import fetch_dataflow_job_id

            job_id = fetch_dataflow_job_id()
            if job_id:
                return job_id
        return self.local_run_id or "unknown-run"

    def reporter(self):
        if self.run_log:
            return JsonlFileReporter(self.run_log)
        if not self.log_project:
            raise ValueError("no GCP project known for the run summary log (set --project)")
        return CloudLoggingReporter(self.log_project)

    def mailer(self):
        return mailer_for(self.alert_secret, self.alert_from, self.alert_to, self.alert_outbox)

    def follow_ups(self):
        return follow_ups_for(self.followup_queue, self.followup_outbox)


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




# ------------------------------------------------------------------------------ the run


def _outcome(ref: ObjectRef, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "uri": ref.uri, "generation": str(ref.generation), "size": ref.size, "landed_at": ref.created,
        "status": status, "valid_rows": 0, "quarantined_rows": 0, "curated_uri": None, "quarantine_uri": None,
        "reasons": {}, "error": None, **extra,
    }


def _ref(o: Mapping[str, Any]) -> ObjectRef:
    return ObjectRef(o["uri"], int(o["generation"]), int(o.get("size") or 0), o.get("landed_at") or "")


def next_load_allowed(cfg: EtlConfig, last_load_at: str | None) -> dt.datetime | None:
    """When the daily load budget (``max_loads_per_day``) next allows a load after one started at
    ``last_load_at``; None if it allows one now."""
    if not cfg.max_loads_per_day or not last_load_at:
        return None
    next_load = dt.datetime.fromisoformat(last_load_at) + cfg.load_interval
    return next_load if utc_now() < next_load else None


def resolve_recorded_load(cfg: EtlConfig, run_id: str, record: Mapping[str, Any], result: LoadResult,
                          extra: list[Mapping[str, Any]] = (), failed: list[Mapping[str, Any]] = ()) -> list[Mapping[str, Any]]:
    """Settle one recorded load batch in the state, given its finished job; returns the files this call committed.

    Also commits ``extra`` (files with nothing to load: all rows quarantined, or rejected whole)
    and counts one attempt for each of ``failed`` and for each file the failed job blames, under
    ``run_id``: settling the same run again (a retried step) counts nothing twice.
    """
    stamp = checkpoint.now_iso()
    by_curated = {f["curated_uri"]: f for f in record.get("files", [])}

    def settle(state: dict[str, Any]) -> list[Mapping[str, Any]]:
        added: list[Mapping[str, Any]] = []
        if record and state["loads"].get(run_id, {}).get("job_id") == record.get("job_id"):
            del state["loads"][run_id]
            state["last_load_at"] = max(filter(None, [state.get("last_load_at"), record["started_at"]]))
            if result.ok:
                added += checkpoint.add_committed(state, record["files"], stamp)
            else:
                for curated in result.sources_blamed(list(by_curated)):
                    f = by_curated[curated]
                    checkpoint.count_failure(state, f["uri"], f["generation"], f"load failed: {result.error_text}",
                                             stamp, run_id)
        added += checkpoint.add_committed(state, extra, stamp)
        for o in failed:
            checkpoint.count_failure(state, o["uri"], o["generation"], o["error"] or "failed", stamp, run_id)
        return added

    return checkpoint.update(store_for(cfg.checkpoint_uri), cfg.checkpoint_uri, cfg.pipeline, settle)


def archive(cfg: EtlConfig, committed: list[Mapping[str, Any]]) -> None:
    """Move committed file versions out of the landing folder, then stamp their state entries as archived."""
    if not cfg.archive_prefix or not committed:
        return
    refs = [_ref(o) for o in committed]
    for ref in refs:
        store_for(ref.uri).archive(ref, cfg.archive_uri(ref))
    stamp = checkpoint.now_iso()
    checkpoint.update(store_for(cfg.checkpoint_uri), cfg.checkpoint_uri, cfg.pipeline,
                      lambda state: checkpoint.mark_archived(state, refs, stamp))


class PlanRun(beam.DoFn):
    """Once per run: settle earlier runs' recorded loads, tidy up, pick this run's bounded batch."""

    def __init__(self, config: EtlConfig):
        self.config = config

    def process(self, _unused) -> Iterator[Any]:
        cfg = self.config
        run_id = cfg.run_id()
        state_store = store_for(cfg.checkpoint_uri)
        state = checkpoint.load(state_store, cfg.checkpoint_uri, cfg.pipeline)
        recovered: list[Mapping[str, Any]] = []
        if state["loads"]:
            table = table_for(cfg.output_table)
            for other_run, record in sorted(state["loads"].items()):
                # Create-if-absent under the recorded id, then wait: at most one creation succeeds.
                result = table.load([f["curated_uri"] for f in record["files"]], record["job_id"])
                LOG.warning("settled the load batch recorded by run %s (job %s): %s", other_run, record["job_id"],
                            "loaded" if result.ok else result.error_text)
                recovered += resolve_recorded_load(cfg, other_run, record, result)
            state = checkpoint.load(state_store, cfg.checkpoint_uri, cfg.pipeline)

        listed_at = checkpoint.now_iso()
        listing = [ref for ref in store_for(cfg.landing_prefix).list(cfg.landing_prefix)
                   if is_landing_file(cfg.relative_name(ref))]
        leftovers = [ref for ref in listing if checkpoint.is_done(state, ref)]  # committed, archive interrupted
        if cfg.archive_prefix:
            for ref in leftovers:
                store_for(ref.uri).archive(ref, cfg.archive_uri(ref))
        archived = leftovers if cfg.archive_prefix else []
        listed_uris = {ref.uri for ref in listing}
        state = checkpoint.update(state_store, cfg.checkpoint_uri, cfg.pipeline,
                                  lambda s: (checkpoint.forget(s, listed_uris, listed_at, archived), s)[1])
        todo = checkpoint.pending(state, [ref for ref in listing if ref not in set(archived)])

        deferred_until = next_load_allowed(cfg, state.get("last_load_at")) if todo else None
        selected: list[ObjectRef] = []
        if deferred_until is None:
            budget = cfg.max_bytes_per_run * MIB
            for ref in todo:
                if len(selected) >= cfg.max_files_per_run or (selected and budget - ref.size < 0):
                    break
                selected.append(ref)
                budget -= ref.size
        LOG.info("%s: %d listed, %d pending, %d selected%s", cfg.pipeline, len(listing), len(todo), len(selected),
                 f", load deferred until {deferred_until.isoformat()}" if deferred_until else "")
        yield beam.pvalue.TaggedOutput("plan", {
            "run_id": run_id,
            "listed_at": listed_at,
            "listed": len(listing),
            "pending": len(todo),
            "backlog_files": len(todo) - len(selected),
            "deferred_until": deferred_until.isoformat() if deferred_until else None,
            "recovered": recovered,
            "attempts": {ref.uri: state["attempts"][ref.uri] for ref in selected
                         if checkpoint.attempts(state, ref)},
        })
        yield from selected


class ProcessFile(beam.DoFn):
    """Validate one landing file and write its curated + quarantine outputs (the load is per run)."""

    def __init__(self, config: EtlConfig):
        self.config = config
        self.valid_rows = Metrics.counter("etl", "valid_rows")
        self.quarantined_rows = Metrics.counter("etl", "quarantined_rows")
        self.files = Metrics.counter("etl", "files_processed")

    def process(self, ref: ObjectRef, plan: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        cfg = self.config
        prior = plan["attempts"].get(ref.uri) or {}
        prior_count = int(prior.get("count", 0)) if prior.get("generation") == str(ref.generation) else 0
        with tempfile.TemporaryDirectory(prefix="etl-") as tmp:
            source = os.path.join(tmp, "source.parquet")
            try:
                store_for(ref.uri).download(ref, source)
            except ObjectChanged as exc:
                # Overwritten or deleted since listing; the new version has its own event and run.
                LOG.warning("skipping %s: %s", ref.uri, exc)
                yield _outcome(ref, "superseded")
                return
            if prior_count >= cfg.max_file_attempts:  # e.g. its load failed N times: do not try again
                yield self._reject(ref, source, prior.get("error") or "failed", prior_count)
                return
            curated, quarantine = os.path.join(tmp, "curated.parquet"), os.path.join(tmp, "quarantine.jsonl")
            try:
                result = split_file(source, cfg.fields, curated, quarantine, ref.uri, ref.generation)
            except UnreadableFile as exc:
                error = f"unreadable Parquet: {exc}"[:500]
                if prior_count + 1 >= cfg.max_file_attempts:
                    yield self._reject(ref, source, error, prior_count + 1)
                else:
                    LOG.warning("attempt %d of %d failed for %s: %s", prior_count + 1, cfg.max_file_attempts, ref.uri, error)
                    yield _outcome(ref, "failed", error=error)
                return
            outcome = _outcome(ref, "loaded" if result.valid_rows else "empty",
                               valid_rows=result.valid_rows, quarantined_rows=result.quarantined_rows,
                               reasons=dict(result.reasons))
            if result.quarantined_rows:
                outcome["quarantine_uri"] = cfg.quarantine_uri(ref)
                store_for(outcome["quarantine_uri"]).upload(quarantine, outcome["quarantine_uri"])
            if result.valid_rows:
                outcome["curated_uri"] = cfg.curated_uri(ref)
                store_for(outcome["curated_uri"]).upload(curated, outcome["curated_uri"])
        self.valid_rows.inc(result.valid_rows)
        self.quarantined_rows.inc(result.quarantined_rows)
        self.files.inc()
        yield outcome

    def _reject(self, ref: ObjectRef, source: str, error: str, attempts: int) -> dict[str, Any]:
        """Quarantine the whole file (its bytes and its error) so it stops blocking anything."""
        cfg = self.config
        rejected_uri = cfg.quarantine_uri(ref, ".rejected.parquet")
        store_for(rejected_uri).upload(source, rejected_uri)
        error_uri = cfg.quarantine_uri(ref, ".error.json")
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump({"uri": ref.uri, "generation": str(ref.generation), "attempts": attempts, "error": error}, f)
        try:
            store_for(error_uri).upload(f.name, error_uri)
        finally:
            os.unlink(f.name)
        LOG.error("quarantined %s whole after %d attempt(s): %s", ref.uri, attempts, error)
        return _outcome(ref, "rejected", error=error, quarantine_uri=rejected_uri)


def run_summary(cfg: EtlConfig, plan: Mapping[str, Any], outcomes: list[Mapping[str, Any]],
                committed: list[Mapping[str, Any]], load: LoadResult | None, backlog: int) -> dict[str, Any]:
    """The structured summary of a run, counting only the files this run committed (C1 contract)."""
    loaded = [o for o in committed if o["status"] == "loaded"]
    rejected = [o for o in committed if o["status"] == "rejected"]
    committed_uris = {o["uri"] for o in committed}
    if load is not None and not load.ok:
        outcome = "failed"
    elif rejected or backlog or plan.get("deferred_until"):
        outcome = "partial"
    else:
        outcome = "succeeded"
    return {
        "event": SUMMARY_EVENT,
        "pipeline": cfg.pipeline,
        "run_id": plan["run_id"],
        "outcome": outcome,
        "processed_files": len(committed),
        "loaded_files": len(loaded),
        "loaded_rows": sum(o["valid_rows"] for o in loaded),
        "valid_rows": sum(o["valid_rows"] for o in committed),
        "quarantined_rows": sum(o["quarantined_rows"] for o in committed),
        "rejected_files": len(rejected),
        "skipped_files": sum(1 for o in outcomes if o["uri"] not in committed_uris),
        "backlog_files": backlog,
        "load_job_id": load.job_id if load else None,
        "load_error": load.error_text if load is not None and not load.ok else None,
        "deferred_until": plan.get("deferred_until"),
        "files": [
            {k: o.get(k) for k in ("uri", "generation", "valid_rows", "quarantined_rows", "quarantine_uri", "reasons", "error")}
            for o in committed
        ],
    }


def file_events(cfg: EtlConfig, run_id: str, committed: list[Mapping[str, Any]], loaded_at: dt.datetime) -> list[dict[str, Any]]:
    """One ``etl_file_loaded`` event per committed file whose rows went through (C1 contract)."""
    events = []
    for o in committed:
        if o["status"] == "rejected":
            continue
        landed = parse_time(o["landed_at"]) if o.get("landed_at") else loaded_at
        events.append({
            "event": FILE_EVENT, "pipeline": cfg.pipeline, "run_id": run_id, "file": o["uri"],
            "generation": str(o["generation"]), "rows": o["valid_rows"],
            "landed_at": rfc3339(landed),
            "loaded_at": rfc3339(loaded_at),
            "arrival_to_load_seconds": round(max(0.0, (loaded_at - landed).total_seconds()), 3),
        })
    return events


class CommitRun(beam.DoFn):
    """Once per run, after every file's writes: one load job, commit, archive, report, follow up."""

    def __init__(self, config: EtlConfig):
        self.config = config

    def process(self, outcomes: list[dict[str, Any]], plan: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        cfg = self.config
        run_id = plan["run_id"]
        state_store = store_for(cfg.checkpoint_uri)
        loadable = [o for o in outcomes if o["status"] == "loaded"]
        no_load = [o for o in outcomes if o["status"] in ("empty", "rejected")]
        failed = [o for o in outcomes if o["status"] == "failed"]
        stamp = checkpoint.now_iso()

        def claim(state: dict[str, Any]) -> dict[str, Any] | None:
            if run_id in state["loads"]:  # a retried bundle of this very step: keep the recorded batch
                return state["loads"][run_id]
            taken = checkpoint.claimed(state)
            batch = [o for o in loadable if not checkpoint.is_done(state, _ref(o))
                     and (o["uri"], str(o["generation"])) not in taken]
            if not batch:
                return None
            state["loads"][run_id] = {"job_id": cfg.load_job_id(run_id, batch), "started_at": stamp, "files": batch}
            return state["loads"][run_id]

        # The entries of files other runs committed since an old listing may be gone by now (see
        # checkpoint.TOMBSTONE): claiming from it could load them twice. Such a batch is left to a
        # fresh run (it counts as backlog, so a follow-up is requested).
        stale = bool(loadable) and checkpoint.listing_too_old(plan["listed_at"])
        if stale:
            LOG.warning("%s: run %s listed landing at %s, too long ago to claim a load batch", cfg.pipeline, run_id,
                        plan["listed_at"])
        record = checkpoint.update(state_store, cfg.checkpoint_uri, cfg.pipeline, claim) if loadable and not stale else None
        load = None
        if record is not None:
            load = table_for(cfg.output_table).load([f["curated_uri"] for f in record["files"]], record["job_id"])
        newly = resolve_recorded_load(cfg, run_id, record or {}, load or LoadResult("", True), extra=no_load, failed=failed)
        archive(cfg, newly)  # what PlanRun recovered from earlier runs' records, it archived with the leftovers
        committed = list(plan.get("recovered", [])) + newly

        unloaded = len(record["files"]) if record is not None and load is not None and not load.ok else 0
        backlog = plan["backlog_files"] + len(failed) + unloaded + (len(loadable) if stale else 0)
        summary = run_summary(cfg, plan, outcomes, committed, load, backlog)
        loaded_at = utc_now()
        logged = dict(summary)
        if len(logged["files"]) > SUMMARY_FILES_LIMIT:
            logged.update(files=logged["files"][:SUMMARY_FILES_LIMIT], files_truncated=True)
        try:
            cfg.reporter().report(logged, file_events(cfg, run_id, committed, loaded_at))
        except Exception:  # noqa: BLE001 - the data is committed; a lost log line must not fail the job
            LOG.exception("could not write the run summary: %s", json.dumps(logged))
        send_summary_alert(cfg.mailer(), summary)
        if backlog:
            # A run that ran a load (loaded or failed: both count against the table's daily
            # modifications) asks for its follow-up no sooner than the budget allows the next load;
            # an earlier follow-up would be a whole job that only defers (or, after a failure that
            # blames no file, retries it at once, run after run).
            after_load = next_load_allowed(cfg, record["started_at"]) if load is not None else None
            self._follow_up(run_id, plan, after_load)
        yield summary

    def _follow_up(self, run_id: str, plan: Mapping[str, Any], after_load: dt.datetime | None = None) -> None:
        cfg = self.config
        follow_ups = cfg.follow_ups()
        if follow_ups is None:
            LOG.warning("%s: work left for a later run but no follow-up queue is configured", cfg.pipeline)
            return
        deferred = dt.datetime.fromisoformat(plan["deferred_until"]) if plan.get("deferred_until") else None
        not_before = max(filter(None, [deferred, after_load]), default=None)
        try:
            follow_ups.request(cfg.pipeline, run_id, "deferred" if not_before else "backlog", not_before)
        except Exception:  # noqa: BLE001 - the schedule and the next arrival still pick the backlog up
            LOG.exception(json.dumps({"event": "etl_follow_up_failed", "pipeline": cfg.pipeline, "run_id": run_id}))


def build(p: beam.Pipeline, config: EtlConfig) -> beam.PCollection:
    """Attach the ETL to a pipeline; returns the PCollection holding the single run summary."""
    planned = (
        p
        | "Start" >> beam.Create([config.pipeline])
        | "PlanRun" >> beam.ParDo(PlanRun(config)).with_outputs("plan", main="files")
    )
    plan = beam.pvalue.AsSingleton(planned.plan)
    return (
        planned.files
        # Break fusion with the single planning element so files spread over all workers.
        | "SpreadFiles" >> beam.Reshuffle()
        | "ProcessFiles" >> beam.ParDo(ProcessFile(config), plan)
        | "CollectOutcomes" >> beam.combiners.ToList()
        | "CommitAndReport" >> beam.ParDo(CommitRun(config), plan)
    )


def run(argv: list[str] | None = None):
    """Build and run the pipeline; waits for completion except on Dataflow (the launcher must exit)."""
    options = PipelineOptions(argv)
    config = EtlConfig.from_options(options)
    worker = options.view_as(WorkerOptions)
    if config.on_dataflow and not worker.sdk_container_image and os.environ.get("ETL_SDK_CONTAINER_IMAGE"):
        # The template image doubles as the worker image (dependencies preinstalled, no pip at start-up,
        # which private-IP workers without NAT could not do anyway).
        worker.sdk_container_image = os.environ["ETL_SDK_CONTAINER_IMAGE"]
    pipeline = beam.Pipeline(options=options)
    build(pipeline, config)
    result = pipeline.run()
    if not config.on_dataflow:
        state = result.wait_until_finish()
        if state != PipelineState.DONE:
            raise RuntimeError(f"pipeline finished in state {state}")
    return result
