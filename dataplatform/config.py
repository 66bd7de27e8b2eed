"""Typed, validated environment configuration (`environments/<env>.yaml`).

Every per-environment value lives in that file; this module holds the frozen pydantic
models. `dataplatform/config_loader.py` reads the files and turns every problem into one
line naming the file, the line, the field path and what was expected, never a traceback.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from dataplatform import cron, naming

REPO_ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS_DIR = REPO_ROOT / "environments"

REQUIRED_LABELS = ("owner", "cost_center")
"""Label keys every environment must set; `env` and `managed_by` are added automatically."""


class _Model(BaseModel):
    """Strict base: unknown keys are errors (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


def _named(kind: str):
    """A field validator factory checking a value against a GCP naming rule."""

    def validate(value: str) -> str:
        if not naming.is_valid(kind, value):
            raise ValueError(f"expected {naming.describe(kind)}")
        return value

    return validate


class Profile(StrEnum):
    lean = "lean"
    managed = "managed"


class SlaTier(StrEnum):
    standard = "standard"
    high = "high"


class FieldType(StrEnum):
    STRING = "STRING"
    INTEGER = "INTEGER"
    FLOAT = "FLOAT"
    NUMERIC = "NUMERIC"
    BOOLEAN = "BOOLEAN"
    TIMESTAMP = "TIMESTAMP"
    DATE = "DATE"


NUMERIC_TYPES = {FieldType.INTEGER, FieldType.FLOAT, FieldType.NUMERIC}


class FieldMode(StrEnum):
    REQUIRED = "REQUIRED"
    NULLABLE = "NULLABLE"


class Trigger(StrEnum):
    on_arrival = "on_arrival"
    scheduled = "scheduled"
    both = "both"


_PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]$")
_GITHUB_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")

# email-validator (through pydantic), offline: syntax and domain rules, no DNS lookup.
Email = Annotated[EmailStr, Field(description="an email address")]

class PartitionGranularity(StrEnum):
    DAY = "DAY"
    HOUR = "HOUR"
    MONTH = "MONTH"
    YEAR = "YEAR"


MAX_CLUSTER_COLUMNS = 4
"""BigQuery clusters a table on at most four top-level columns."""
PARTITION_TYPES = {"TIMESTAMP", "DATE", "DATETIME"}
CLUSTER_TYPES = {"STRING", "INTEGER", "INT64", "NUMERIC", "BIGNUMERIC", "BOOLEAN", "BOOL", "TIMESTAMP", "DATE", "DATETIME", "GEOGRAPHY"}


def partitioning_problems(column: str | None, granularity: str, types: dict[str, str]) -> list[str]:
    """What BigQuery would reject in a column-partitioned table (shared with guardrail GR-DAT-008)."""
    if column is None:
        return []
    if column not in types:
        return [f"partition_by {column!r} is not a column of the schema"]
    if types[column] not in PARTITION_TYPES:
        return [f"partition_by {column!r} is {types[column]}; BigQuery partitions on TIMESTAMP, DATE or DATETIME columns"]
    if types[column] == "DATE" and granularity == "HOUR":
        return [f"partition_by {column!r} is a DATE: HOUR partitions need a TIMESTAMP or DATETIME column"]
    return []


def clustering_problems(columns: list[str], types: dict[str, str]) -> list[str]:
    """What BigQuery would reject in a table's clustering (shared with guardrail GR-DAT-009)."""
    problems = []
    if len(columns) > MAX_CLUSTER_COLUMNS:
        problems.append(f"cluster_by has {len(columns)} columns; BigQuery clusters on at most {MAX_CLUSTER_COLUMNS}")
    if len(set(columns)) != len(columns):
        problems.append("cluster_by repeats a column")
    for column in columns:
        if column not in types:
            problems.append(f"cluster_by {column!r} is not a column of the schema")
        elif types[column] not in CLUSTER_TYPES:
            problems.append(f"cluster_by {column!r} is {types[column]}; BigQuery cannot cluster on that type")
    return problems


class SchemaField(_Model):
    """One column of a pipeline's table; also the ETL's validation rule for that column."""

    name: str = Field(description="Column name (BigQuery rules: letters, digits, _).")
    type: FieldType = Field(description="BigQuery type: STRING, INTEGER, FLOAT, NUMERIC, BOOLEAN, TIMESTAMP, DATE.")
    mode: FieldMode = Field(FieldMode.NULLABLE, description="REQUIRED rows without a value are quarantined.")
    min: float | None = Field(None, description="Smallest valid value (numeric types only).")
    max: float | None = Field(None, description="Largest valid value (numeric types only).")
    description: str = Field("", description="Column description shown in BigQuery and the catalog.")

    _check_name = field_validator("name")(_named("column"))

    @model_validator(mode="after")
    def _range_fits_type(self) -> "SchemaField":
        if (self.min is not None or self.max is not None) and self.type not in NUMERIC_TYPES:
            raise ValueError(f"min/max are only allowed on numeric types, not {self.type.value}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self

    def bigquery(self) -> dict[str, str]:
        """The column as a BigQuery schema entry."""
        return {"name": self.name, "type": self.type.value, "mode": self.mode.value, "description": self.description}


class Pipeline(_Model):
    """One source feed: a landing folder, an ETL run per arrival and/or schedule, one table."""

    name: str = Field(description="Pipeline id: landing folder, table id and job name prefix (a-z 0-9 _, max 30).")
    description: str = Field("", description="What the feed is; shown on the table.")
    trigger: Trigger = Field(Trigger.both, description="on_arrival (per finalized file), scheduled (cron), or both (the default: a run that fails is retried by the next scheduled run; with on_arrival alone, only when another file lands).")
    schedule: str | None = Field(None, description="Cron (5 fields, UTC) for scheduled runs; required unless trigger is on_arrival.")
    max_workers: int = Field(2, ge=1, le=50, description="Dataflow max workers for one run (cost cap; guardrail limit 50).")
    max_runtime_minutes: int = Field(60, ge=5, le=1440, description="A run longer than this raises an alert.")
    quality_schedule: str = Field("0 6 * * *", description="Cron (UTC) of the Dataplex data profile and quality scans of the table.")
    quality_threshold: float = Field(0.99, gt=0, le=1, description="Share of rows that must pass each quality rule.")
    partition_by: str | None = Field(None, description=(
        "TIMESTAMP or DATE column (the event time) the table is partitioned on; unset = ingestion-time partitions."))
    partition_granularity: PartitionGranularity = Field(
        PartitionGranularity.DAY, description="Partition size: DAY, HOUR (TIMESTAMP columns only), MONTH or YEAR.")
    cluster_by: list[str] = Field(default_factory=list, max_length=MAX_CLUSTER_COLUMNS, description=(
        f"Up to {MAX_CLUSTER_COLUMNS} columns the table is clustered on (not FLOAT); filters on them read less data."))
    max_files_per_run: int = Field(5000, ge=1, le=100_000, description="At most this many landing files per ETL run; a backlog drains in runs of this size.")
    max_bytes_per_run: int = Field(10240, ge=1, le=1_048_576, description="At most this many MiB of landing files per ETL run (a single larger file still runs alone).")
    max_file_attempts: int = Field(3, ge=1, le=10, description="A file that fails to read, parse or load this many times is quarantined whole.")
    max_loads_per_day: int = Field(288, ge=1, le=1000, description="At most this many BigQuery load jobs per day into the table (BigQuery allows 1,500 table modifications per day; guardrail limit 1000).")
    schema_: list[SchemaField] = Field(alias="schema", min_length=1, description="Table columns and validation rules (also the data quality rules).")
    slo: "SloSettings" = Field(default_factory=lambda: SloSettings(), description="Service level objectives of the pipeline; unset values come from sla_tier (README: Service levels).")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    _check_name = field_validator("name")(_named("pipeline"))

    @field_validator("schedule", "quality_schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return value if value is None else cron.check(value)

    @field_validator("schema_")
    @classmethod
    def _unique_columns(cls, fields: list[SchemaField]) -> list[SchemaField]:
        seen: set[str] = set()
        for field in fields:
            if field.name.lower() in seen:
                raise ValueError(f"column {field.name!r} is declared twice (BigQuery names are case-insensitive)")
            seen.add(field.name.lower())
        return fields

    @model_validator(mode="after")
    def _partition_and_clusters_in_schema(self) -> "Pipeline":
        columns = {f.name: f for f in self.schema_}
        problems = partitioning_problems(self.partition_by, self.partition_granularity.value,
                                         {n: f.type.value for n, f in columns.items()})
        problems += clustering_problems(self.cluster_by, {n: f.type.value for n, f in columns.items()})
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _schedule_matches_trigger(self) -> "Pipeline":
        if self.trigger != Trigger.on_arrival and self.schedule is None:
            raise ValueError(f"schedule is required when trigger is {self.trigger.value}")
        return self

    @property
    def scheduled(self) -> bool:
        return self.trigger in (Trigger.scheduled, Trigger.both)

    def column(self, name: str) -> SchemaField | None:
        """The schema column called `name` (BigQuery names are case-insensitive), or None."""
        return next((f for f in self.schema_ if f.name.lower() == name.lower()), None)

    @property
    def on_arrival(self) -> bool:
        return self.trigger in (Trigger.on_arrival, Trigger.both)


class FlowLogInterval(StrEnum):
    INTERVAL_5_SEC = "INTERVAL_5_SEC"
    INTERVAL_30_SEC = "INTERVAL_30_SEC"
    INTERVAL_1_MIN = "INTERVAL_1_MIN"
    INTERVAL_5_MIN = "INTERVAL_5_MIN"
    INTERVAL_10_MIN = "INTERVAL_10_MIN"
    INTERVAL_15_MIN = "INTERVAL_15_MIN"


class FlowLogMetadata(StrEnum):
    INCLUDE_ALL_METADATA = "INCLUDE_ALL_METADATA"
    EXCLUDE_ALL_METADATA = "EXCLUDE_ALL_METADATA"


class NetworkSettings(_Model):
    subnet_cidr: str = Field("10.10.0.0/20", description="Primary range of the platform subnet (private RFC 1918).")
    flow_log_sampling: float = Field(0.5, gt=0, le=1, description="VPC flow log sampling rate (0-1]; log volume (cost) grows with it.")
    flow_log_interval: FlowLogInterval = Field(
        FlowLogInterval.INTERVAL_5_MIN, description="Flow log aggregation interval; shorter intervals log more entries.")
    flow_log_metadata: FlowLogMetadata = Field(
        FlowLogMetadata.EXCLUDE_ALL_METADATA, description="Whether flow log entries carry VM/instance metadata (larger entries).")

    @field_validator("subnet_cidr")
    @classmethod
    def _private_cidr(cls, value: str) -> str:
        try:
            net = ipaddress.IPv4Network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"expected an IPv4 CIDR such as 10.10.0.0/20 ({exc})") from None
        if not net.is_private or not (8 <= net.prefixlen <= 29):
            raise ValueError("expected a private (RFC 1918) range between /8 and /29")
        return value


class StorageSettings(_Model):
    nearline_after_days: int = Field(90, ge=1, description="Data objects move to Nearline after this many days.")
    coldline_after_days: int = Field(365, ge=1, description="Data objects move to Coldline after this many days.")
    noncurrent_version_days: int = Field(30, ge=1, description="Noncurrent (overwritten/deleted) versions expire after this many days.")
    temp_object_days: int = Field(7, ge=1, le=365, description="Objects in the temp bucket expire after this many days.")
    soft_delete_days: int = Field(7, ge=7, le=90, description="Soft-delete retention on every bucket (7-90 days).")
    dual_region: str | None = Field(None, description="Predefined dual-region (e.g. EUR4, NAM4) for the landing bucket; required when sla_tier is high.")

    @model_validator(mode="after")
    def _tiers_in_order(self) -> "StorageSettings":
        if self.coldline_after_days <= self.nearline_after_days:
            raise ValueError("coldline_after_days must be greater than nearline_after_days")
        return self


class GitHubSettings(_Model):
    repository: str = Field(description="owner/name of the GitHub repository allowed to plan and deploy.")
    repository_id: int = Field(ge=1, description=(
        "Numeric id of the repository (`gh api repos/OWNER/NAME --jq .id`); Workload Identity Federation pins it, "
        "since a deleted repository's name can be registered again by anyone."))
    owner_id: int = Field(ge=1, description="Numeric id of the repository's owner (`gh api repos/OWNER/NAME --jq .owner.id`); pinned too.")
    deploy_branch: str = Field("main", description=(
        "Only the deploy workflow (`.github/workflows/deploy-env.yml`) on this branch, in the GitHub environment named like "
        "the environment file, may use the deployer identity."))

    @field_validator("repository")
    @classmethod
    def _repo(cls, value: str) -> str:
        if not _GITHUB_REPO.fullmatch(value):
            raise ValueError("expected 'owner/name' of a GitHub repository")
        return value


class AirflowVmSettings(_Model):
    """lean profile: a private VM running a pinned Airflow, reached only through IAP."""

    machine_type: str = Field("e2-standard-2", description="VM size (cost cap).")
    disk_size_gb: int = Field(50, ge=20, le=500, description="Boot disk size.")
    airflow_version: str = Field("3.3.2", pattern=r"^[23]\.\d+\.\d+$", description="Pinned apache-airflow version (2.x or 3.x) installed by the startup script.")
    zone_suffix: str = Field("b", pattern=r"^[a-f]$", description="Zone letter within the region.")


MIN_MAINTENANCE_WEEKLY_HOURS = 12
MIN_MAINTENANCE_SLOT_HOURS = 4
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def maintenance_days_per_week(recurrence: str) -> int | None:
    """Days per week of a Composer maintenance RRULE (FREQ=DAILY or FREQ=WEEKLY;BYDAY=..), None if unsupported."""
    parts = dict(p.split("=", 1) for p in recurrence.upper().split(";") if "=" in p)
    if parts.get("FREQ") == "DAILY" and set(parts) == {"FREQ"}:
        return 7
    if parts.get("FREQ") == "WEEKLY" and set(parts) == {"FREQ", "BYDAY"}:
        days = parts["BYDAY"].split(",")
        if days and all(d in _WEEKDAYS for d in days) and len(set(days)) == len(days):
            return len(days)
    return None


class ComposerSettings(_Model):
    """managed profile: Cloud Composer 3, private."""

    image_version: str = Field("composer-3-airflow-2.10.5", pattern=r"^composer-3-airflow-[0-9.]+(-build\.\d+)?$", description="Composer 3 image version.")
    environment_size: str = Field("ENVIRONMENT_SIZE_SMALL", pattern=r"^ENVIRONMENT_SIZE_(SMALL|MEDIUM|LARGE)$", description="Composer environment size.")
    scheduler_count: int = Field(1, ge=1, le=3, description="Airflow schedulers.")
    max_workers: int = Field(3, ge=1, le=10, description="Airflow worker autoscaling maximum (cost cap; guardrail limit 10).")
    maintenance_start: str = Field("2026-01-01T02:00:00Z", description="Maintenance window start (RFC 3339; the time of day counts).")
    maintenance_recurrence: str = Field("FREQ=WEEKLY;BYDAY=SA,SU", description="Maintenance window recurrence (RRULE: FREQ=DAILY or FREQ=WEEKLY;BYDAY=..).")
    maintenance_hours: int = Field(6, ge=MIN_MAINTENANCE_SLOT_HOURS, le=24, description=(
        f"Length of each maintenance window; Composer needs slots of >= {MIN_MAINTENANCE_SLOT_HOURS} h adding up to "
        f">= {MIN_MAINTENANCE_WEEKLY_HOURS} h a week."))

    @model_validator(mode="after")
    def _enough_maintenance(self) -> "ComposerSettings":
        days = maintenance_days_per_week(self.maintenance_recurrence)
        if days is None:
            raise ValueError("maintenance_recurrence: expected FREQ=DAILY or FREQ=WEEKLY;BYDAY=<days> (e.g. SA,SU)")
        if days * self.maintenance_hours < MIN_MAINTENANCE_WEEKLY_HOURS:
            raise ValueError(f"maintenance windows add up to {days * self.maintenance_hours} h a week "
                             f"({days} x {self.maintenance_hours} h); Composer needs at least {MIN_MAINTENANCE_WEEKLY_HOURS} h")
        return self

    @field_validator("maintenance_start")
    @classmethod
    def _rfc3339(cls, value: str) -> str:
        from datetime import datetime

        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("expected an RFC 3339 time such as 2026-01-01T02:00:00Z") from None
        return value


class ScheduledBy(StrEnum):
    cloud_scheduler = "cloud_scheduler"
    airflow = "airflow"


class OrchestrationSettings(_Model):
    scheduled_by: ScheduledBy = Field(ScheduledBy.airflow, description=(
        "Who launches scheduled runs: airflow (the pipeline's DAG launches, waits and checks rows) or "
        "cloud_scheduler (a Scheduler job launches; the DAG only checks rows). Never both, so a cron never launches twice."))
    airflow_vm: AirflowVmSettings = Field(default_factory=AirflowVmSettings, description="Used by the lean profile.")
    composer: ComposerSettings = Field(default_factory=ComposerSettings, description="Used by the managed profile.")


class DataprocSettings(_Model):
    image_version: str = Field("2.2-debian12", pattern=r"^\d+\.\d+(\.\d+)?-(debian|ubuntu|rocky)\d+$", description="Pinned Dataproc image.")
    machine_type: str = Field("n2-standard-4", description="Master (and, unless worker_machine_type is set, worker) machine type.")
    worker_machine_type: str | None = Field(None, description=(
        "managed: primary worker machine type (default: machine_type). GPUs attach to N1 types only (n1-*)."))
    idle_stop_minutes: int = Field(60, ge=10, le=20160, description=(
        "The cluster is stopped (not deleted: Terraform keeps managing it, notebooks stay) after this idle time "
        "(cost cap; Dataproc accepts 10 min to 14 days)."))
    primary_workers: int = Field(2, ge=2, le=100, description="managed: primary workers (min of autoscaling).")
    max_primary_workers: int = Field(4, ge=2, le=100, description="managed: autoscaling max primary workers (cost cap).")
    max_secondary_workers: int = Field(10, ge=0, le=1000, description="managed: autoscaling max spot secondary workers (cost cap).")
    gpu_type: str = Field("nvidia-tesla-t4", description="managed: accelerator type on primary workers.")
    gpu_count: int = Field(1, ge=0, le=8, description="managed: accelerators per primary worker (0 = none).")

    @property
    def effective_worker_machine_type(self) -> str:
        return self.worker_machine_type or self.machine_type


DATAFLOW_CONCURRENT_JOBS_QUOTA = 25
"""Dataflow's default quota of concurrent jobs per project (raise it with Google first, then here)."""


class ProcessingSettings(_Model):
    launcher_max_instances: int = Field(3, ge=1, le=20, description="Launcher function instance cap (cost cap; guardrail limit 20).")
    launcher_memory: str = Field("256M", pattern=r"^\d+[MG]i?$", description="Launcher function memory.")
    max_concurrent_jobs: int = Field(15, ge=1, le=DATAFLOW_CONCURRENT_JOBS_QUOTA, description=(
        "The launcher starts no Dataflow job while the project runs this many; with launcher_max_instances - 1 "
        f"launches racing past the check, the sum stays within Dataflow's {DATAFLOW_CONCURRENT_JOBS_QUOTA} concurrent jobs per project."))

    @model_validator(mode="after")
    def _within_dataflow_quota(self) -> "ProcessingSettings":
        worst = self.max_concurrent_jobs + self.launcher_max_instances - 1
        if worst > DATAFLOW_CONCURRENT_JOBS_QUOTA:
            raise ValueError(
                f"max_concurrent_jobs + launcher_max_instances - 1 is {worst}, above Dataflow's "
                f"{DATAFLOW_CONCURRENT_JOBS_QUOTA} concurrent jobs per project; lower one of them")
        return self


class BudgetSettings(_Model):
    amount: int = Field(ge=1, description="Monthly budget in whole currency units.")
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$", description="ISO 4217 currency of the billing account.")


class Promotion(StrEnum):
    automatic = "automatic"
    approval = "approval"


class CicdSettings(_Model):
    """Cloud Build builds the ETL image from GitHub (Cloud Source Repositories is closed to new customers)."""

    github_app_installation_id: int = Field(ge=1, description="Installation id of the Cloud Build GitHub App on the repository's owner.")
    branch: str = Field("main", description="Pushes to this branch rebuild the ETL image and template.")
    oauth_token_secret_version: int = Field(1, ge=1, description=(
        "Version of the GitHub token secret (created by the bootstrap stack, value added by hand before the platform deploy) "
        "the Cloud Build connection uses."))
    promotion: Promotion = Field(Promotion.automatic, description=(
        "automatic: each push to the branch that passes the build's tests updates the ETL template; approval: each such "
        "build waits for a Cloud Build approver (deliberate promotion; required when sla_tier is high)."))


# ---------------------------------------------------------------- service levels


class SloSettings(_Model):
    """Per-pipeline service levels. Unset values default from `sla_tier` (see `service_level`)."""

    success_goal: float | None = Field(None, gt=0.5, le=0.999, description="Share of ETL runs that must not fail, over 28 rolling days (default: 0.99 high, 0.95 standard; Cloud Monitoring accepts at most 0.999).")
    freshness_goal: float | None = Field(None, gt=0.5, le=0.999, description="Share of files that must be loaded within freshness_minutes of landing, over 28 rolling days (default: as success_goal).")
    freshness_minutes: int | None = Field(None, ge=5, le=10080, description="Landing-to-loaded time a file may take and still count as fresh (default: 2 x max_runtime_minutes when files trigger runs, else the schedule's longest gap + max_runtime_minutes).")
    alert_after_hours_without_success: int | None = Field(None, ge=0, le=25, description="Alert when no run succeeded for this many hours; 0 = no such alert (default: the schedule's longest gap + runtime + 1 h high / 3 h standard, or 6 h / 24 h for arrival-only pipelines; at most 25, the longest window an alert can align over).")


TIER_GOALS = {SlaTier.high: 0.99, SlaTier.standard: 0.95}
"""Default SLO goals per sla_tier (README: Service levels, how the numbers were chosen)."""
TIER_GRACE_HOURS = {SlaTier.high: 1, SlaTier.standard: 3}
TIER_ARRIVAL_ONLY_ALERT_HOURS = {SlaTier.high: 6, SlaTier.standard: 24}
MAX_ALERT_WINDOW_HOURS = 25  # Monitoring aligns an alert condition over at most 90,000 s


@dataclass(frozen=True)
class ServiceLevel:
    """A pipeline's service levels with every default resolved."""

    success_goal: float
    freshness_goal: float
    freshness_minutes: int
    alert_after_hours_without_success: int  # 0 = no "no successful run" alert


Pipeline.model_rebuild()


# ---------------------------------------------------------------- machine learning


class MlModelType(StrEnum):
    LINEAR_REG = "LINEAR_REG"
    LOGISTIC_REG = "LOGISTIC_REG"
    BOOSTED_TREE_REGRESSOR = "BOOSTED_TREE_REGRESSOR"
    BOOSTED_TREE_CLASSIFIER = "BOOSTED_TREE_CLASSIFIER"


REGRESSORS = {MlModelType.LINEAR_REG, MlModelType.BOOSTED_TREE_REGRESSOR}
CLASSIFIER_LABEL_TYPES = {FieldType.STRING, FieldType.BOOLEAN, FieldType.INTEGER}
_DAILY_OR_WEEKLY_CRON = re.compile(r"^(\d{1,2}) (\d{1,2}) \* \* (\*|[0-6](,[0-6])*)$")


class MlModel(_Model):
    """One BigQuery ML model trained on a pipeline's table, predicting after every load."""

    name: str = Field(description="Model id: BigQuery ML model (and Vertex AI Model Registry id) in the ML dataset (a-z 0-9 _, max 30).")
    pipeline: str = Field(description="Source pipeline: the model trains on and predicts for that pipeline's table.")
    label: str = Field(description="Column the model predicts (numeric for regressors; STRING, BOOLEAN or INTEGER for classifiers).")
    features: list[str] = Field(min_length=1, description="Columns the model learns from (not the label, not the key).")
    key: str = Field(description="REQUIRED column identifying a row; predictions are merged on it, so each row is predicted once.")
    model_type: MlModelType = Field(description="BigQuery ML model type: LINEAR_REG, LOGISTIC_REG, BOOSTED_TREE_REGRESSOR, BOOSTED_TREE_CLASSIFIER.")
    retrain_schedule: str = Field(description="Cron (UTC) of retraining: 'M H * * *' (daily) or 'M H * * D[,D]' (weekly, days 0-6); the daily catch-up prediction runs at M past H+1.")
    predictions_table: str = Field(description="Table (in the ML dataset) the predictions are merged into; DAY-partitioned on predicted_at.")
    max_iterations: int = Field(20, ge=1, le=100, description="Training iterations cap (cost cap).")
    max_gb_billed: int = Field(50, ge=1, le=10000, description="maximumBytesBilled of every training/prediction query, in GB (cost cap: BigQuery fails a query that would bill more).")
    lookback_days: int = Field(3, ge=1, le=30, description="Ingestion days of the source table each prediction run scans for rows not yet predicted.")
    min_quality: float = Field(0.0, ge=0, le=1, description="managed: the pipeline predicts only if the new model reaches this r2_score (regressors) / roc_auc (classifiers).")

    _check_name = field_validator("name")(_named("pipeline"))
    _check_table = field_validator("predictions_table")(_named("table"))

    @field_validator("retrain_schedule")
    @classmethod
    def _daily_or_weekly(cls, value: str) -> str:
        match = _DAILY_OR_WEEKLY_CRON.match(value.strip())
        if not match:
            raise ValueError("expected a daily 'M H * * *' or weekly 'M H * * D[,D]' cron (the catch-up prediction is placed after it)")
        minute, hour = int(match.group(1)), int(match.group(2))
        if minute > 59 or hour > 23:
            raise ValueError("expected minute 0-59 and hour 0-23")
        return value

    @field_validator("features")
    @classmethod
    def _unique_features(cls, features: list[str]) -> list[str]:
        lowered = [f.lower() for f in features]
        dupes = sorted({f for f in lowered if lowered.count(f) > 1})
        if dupes:
            raise ValueError(f"features must be unique; repeated: {', '.join(dupes)}")
        return features

    @property
    def regressor(self) -> bool:
        return self.model_type in REGRESSORS


class WorkbenchSettings(_Model):
    """managed profile: the data scientists' Vertex AI Workbench instance."""

    machine_type: str = Field("e2-standard-4", pattern=r"^[a-z][a-z0-9]*-(standard|highmem|highcpu)-\d{1,3}$", description="Workbench VM size (cost cap; guardrail limit 16 vCPUs).")
    idle_shutdown_minutes: int = Field(60, ge=10, le=1440, description="The instance stops after this idle time (10-1440 minutes, Workbench's range).")
    zone_suffix: str = Field("b", pattern=r"^[a-f]$", description="Zone letter within the region.")


class MlSettings(_Model):
    """Models on the ETL's data. lean: BigQuery ML jobs; managed: plus a Vertex AI pipeline and Workbench."""

    data_scientists_group: Email | None = Field(None, description="Google group allowed to use the Workbench instance (required by the managed profile).")
    workbench: WorkbenchSettings = Field(default_factory=WorkbenchSettings, description="managed: Workbench instance settings.")
    models: list[MlModel] = Field(min_length=1, description="One entry per model.")


class Environment(_Model):
    """One environment: a GCP project holding one complete data platform."""

    name: str = Field(description="Environment id; must equal the file name (dev.yaml -> dev). a-z 0-9, 2-10 chars.")
    project_id: str = Field(description="GCP project id the platform is deployed into.")
    project_number: str = Field(pattern=r"^\d{6,20}$", description="The project's number; names Google's service agents without an API call at plan time.")
    billing_account: str = Field(pattern=r"^[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}$", description="Billing account id (XXXXXX-XXXXXX-XXXXXX) the budget watches.")
    region: str = Field(description="GCP region for regional resources, e.g. europe-west1.")
    bigquery_location: str = Field(description="BigQuery dataset location (multi-region EU/US or a region).")
    name_prefix: str = Field(description="Prefix of every resource name: <name_prefix>-<env>-<component>. Keep it short: service account ids max 30 chars.")
    profile: Profile = Field(description="lean (budget-capped: Airflow VM, single-node Dataproc) or managed (Composer, autoscaling).")
    sla_tier: SlaTier = Field(SlaTier.standard, description="standard, or high (dual-region landing bucket, resilient orchestration).")
    labels: dict[str, str] = Field(description=f"Labels stamped on every labelable resource; must include {', '.join(REQUIRED_LABELS)}.")
    network: NetworkSettings = Field(default_factory=NetworkSettings, description="VPC settings.")
    storage: StorageSettings = Field(default_factory=StorageSettings, description="Lake bucket lifecycle settings.")
    github: GitHubSettings = Field(description="Repository trusted through Workload Identity Federation.")
    alert_emails: list[Email] = Field(min_length=1, description="Who receives alerts and quarantine mails.")
    operators_group: Email = Field(description="Google group allowed to reach Airflow through IAP (lean) / use Composer (managed).")
    orchestration: OrchestrationSettings = Field(default_factory=OrchestrationSettings, description="Airflow VM (lean) or Composer (managed).")
    processing: ProcessingSettings = Field(default_factory=ProcessingSettings, description="Launcher function caps.")
    analytics: DataprocSettings = Field(default_factory=DataprocSettings, description="Dataproc cluster for Spark + Jupyter.")
    budget: BudgetSettings = Field(description="Monthly billing budget of the environment.")
    cicd: CicdSettings = Field(description="Cloud Build trigger for the ETL image.")
    pipelines: list[Pipeline] = Field(min_length=1, description="Source feeds; each gets a landing folder, a table and ETL runs.")
    ml: MlSettings | None = Field(None, description="Machine learning on the loaded data (optional).")

    _check_name = field_validator("name")(_named("environment"))

    @field_validator("project_id")
    @classmethod
    def _project(cls, value: str) -> str:
        if not _PROJECT_ID.fullmatch(value):
            raise ValueError("expected a GCP project id: 6-30 chars of a-z 0-9 -, starting with a letter")
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not _REGION.fullmatch(value):
            raise ValueError("expected a GCP region such as europe-west1")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: dict[str, str]) -> dict[str, str]:
        problems = [f"missing required label {key!r}" for key in REQUIRED_LABELS if key not in labels]
        for key, value in labels.items():
            if not naming.is_valid("label_key", key):
                problems.append(f"label key {key!r}: expected {naming.describe('label_key')}")
            if not isinstance(value, str) or not naming.is_valid("label_value", value):
                problems.append(f"label {key!r} value {value!r}: expected {naming.describe('label_value')}")
        if problems:
            raise ValueError("; ".join(problems))
        return labels

    @field_validator("pipelines")
    @classmethod
    def _unique_pipelines(cls, pipelines: list[Pipeline]) -> list[Pipeline]:
        names = [p.name for p in pipelines]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"pipeline names must be unique; repeated: {', '.join(dupes)}")
        return pipelines

    @model_validator(mode="after")
    def _sla_needs_dual_region(self) -> "Environment":
        if self.sla_tier == SlaTier.high and not self.storage.dual_region:
            raise ValueError("sla_tier high needs storage.dual_region (e.g. EUR4) for the landing bucket")
        return self

    @model_validator(mode="after")
    def _gpus_on_n1(self) -> "Environment":
        a = self.analytics
        if self.profile is Profile.managed and a.gpu_count and not a.effective_worker_machine_type.startswith("n1-"):
            raise ValueError(f"analytics: GPUs attach to N1 machine types only; worker type is {a.effective_worker_machine_type!r} "
                             "(set analytics.worker_machine_type: n1-..., or gpu_count: 0)")
        return self

    @model_validator(mode="after")
    def _high_sla_promotes_deliberately(self) -> "Environment":
        if self.sla_tier == SlaTier.high and self.cicd.promotion is not Promotion.approval:
            raise ValueError("sla_tier high needs cicd.promotion: approval (a build nobody approved never changes this environment)")
        return self

    @model_validator(mode="after")
    def _autoscaling_bounds(self) -> "Environment":
        a = self.analytics
        if a.max_primary_workers < a.primary_workers:
            raise ValueError("analytics.max_primary_workers must be at least analytics.primary_workers")
        if a.max_primary_workers + a.max_secondary_workers > 50:
            raise ValueError("analytics.max_primary_workers + max_secondary_workers must not exceed 50 (guardrail cost cap)")
        return self

    @property
    def namer(self) -> naming.Namer:
        return naming.Namer(self.name_prefix, self.name, unique=self.project_number)

    def pipeline(self, name: str) -> Pipeline | None:
        return next((p for p in self.pipelines if p.name == name), None)

    def service_level(self, pipeline: Pipeline) -> ServiceLevel:
        """The pipeline's `slo:` with every unset value defaulted from sla_tier and its schedule."""
        slo, tier = pipeline.slo, self.sla_tier
        gap = cron.max_gap_minutes(pipeline.schedule) if pipeline.scheduled and pipeline.schedule else None
        wait = (gap if gap is not None else 7 * 1440) + pipeline.max_runtime_minutes  # the longest wait for a scheduled run's rows
        # a file landing mid-run waits for that run and the follow-up run
        freshness = 2 * pipeline.max_runtime_minutes if pipeline.on_arrival else wait
        if pipeline.scheduled:
            alert_hours = -(-wait // 60) + TIER_GRACE_HOURS[tier]
        else:
            alert_hours = TIER_ARRIVAL_ONLY_ALERT_HOURS[tier]
        return ServiceLevel(
            success_goal=slo.success_goal or TIER_GOALS[tier],
            freshness_goal=slo.freshness_goal or slo.success_goal or TIER_GOALS[tier],
            freshness_minutes=slo.freshness_minutes or min(freshness, 10080),
            alert_after_hours_without_success=(slo.alert_after_hours_without_success
                                               if slo.alert_after_hours_without_success is not None
                                               else min(alert_hours, MAX_ALERT_WINDOW_HOURS)),
        )

    @property
    def all_labels(self) -> dict[str, str]:
        """The labels stamped on every resource: the file's plus env and managed_by."""
        return {**self.labels, "env": self.name, "managed_by": "cdktn"}


# ---------------------------------------------------------------- loading + errors


class ConfigError(Exception):
    """One or more problems in environment files; `str()` is one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


# Reading YAML with line numbers and wording the errors lives in dataplatform/config_loader.py,
# so the models above stay the only thing in this file. These names remain importable here.


def _not_a_column(column: str, pipeline: Pipeline) -> str:
    return f"{column!r} is not a column of pipeline {pipeline.name!r} (columns: {', '.join(f.name for f in pipeline.schema_)})"


def contract_problems(env: Environment) -> list[tuple[tuple[Any, ...], str]]:
    """Cross-field rules of `ml:` and `slo:` against the pipelines they name: (field path, problem).

    Reads env.pipelines, env.profile and env.ml only (attributes, no method of Environment), so the loader
    runs it on the sections that validated too (config_loader._contracts).
    Model names are unique only by this rule (MlSettings has no validator for it)."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    for i, pipeline in enumerate(env.pipelines):
        slo = pipeline.slo
        if (not pipeline.on_arrival and pipeline.schedule and cron.max_gap_minutes(pipeline.schedule) is None
                and slo.alert_after_hours_without_success is None):
            problems.append((("pipelines", i, "slo", "alert_after_hours_without_success"),
                             f"schedule {pipeline.schedule!r} fires less often than daily, beyond the {MAX_ALERT_WINDOW_HOURS} h "
                             "an alert can look back: set 1-25 hours explicitly, or 0 for no such alert"))
    if env.ml is None:
        return problems
    if env.profile is Profile.managed and not env.ml.data_scientists_group:
        problems.append((("ml", "data_scientists_group"), "required by the managed profile (who may use the Workbench instance)"))
    taken_tables = {p.name.lower() for p in env.pipelines}
    seen_models: set[str] = set()
    for i, model in enumerate(env.ml.models):
        at = ("ml", "models", i)
        if model.name in seen_models:
            problems.append(((*at, "name"), f"model {model.name!r} is declared twice"))
        seen_models.add(model.name)
        if model.predictions_table.lower() in taken_tables:
            problems.append(((*at, "predictions_table"), f"{model.predictions_table!r} is already a pipeline table or another model's predictions table"))
        taken_tables.add(model.predictions_table.lower())
        # not env.pipeline(): the loader also runs these rules on the sections that validated, without an Environment
        pipeline = next((p for p in env.pipelines if p.name == model.pipeline), None)
        if pipeline is None:
            problems.append(((*at, "pipeline"), f"no pipeline named {model.pipeline!r} (have: {', '.join(p.name for p in env.pipelines)})"))
            continue
        label = pipeline.column(model.label)
        if label is None:
            problems.append(((*at, "label"), _not_a_column(model.label, pipeline)))
        elif model.regressor and label.type not in NUMERIC_TYPES:
            problems.append(((*at, "label"), f"{model.model_type.value} predicts a number; {label.name!r} is {label.type.value}"))
        elif not model.regressor and label.type not in CLASSIFIER_LABEL_TYPES:
            problems.append(((*at, "label"), f"{model.model_type.value} predicts a class (STRING, BOOLEAN or INTEGER); {label.name!r} is {label.type.value}"))
        key = pipeline.column(model.key)
        if key is None:
            problems.append(((*at, "key"), _not_a_column(model.key, pipeline)))
        elif key.mode is not FieldMode.REQUIRED:
            problems.append(((*at, "key"), f"{key.name!r} is NULLABLE; the key identifies a row, so it must be REQUIRED"))
        elif key.name.lower() == model.label.lower():
            problems.append(((*at, "key"), "the key cannot also be the label"))
        for j, feature in enumerate(model.features):
            if pipeline.column(feature) is None:
                problems.append(((*at, "features", j), _not_a_column(feature, pipeline)))
            elif feature.lower() in (model.label.lower(), model.key.lower()):
                problems.append(((*at, "features", j), f"{feature!r} is the {'label' if feature.lower() == model.label.lower() else 'key'}; a feature must be neither"))
    return problems


def parse_environment(data: Any, source: str, expected_name: str | None = None) -> Environment:
    from dataplatform.config_loader import parse_environment

    return parse_environment(data, source, expected_name)


def load_environment(path: Path) -> Environment:
    from dataplatform.config_loader import load_environment

    return load_environment(path)


def load_environments(directory: Path = ENVIRONMENTS_DIR) -> list[Environment]:
    from dataplatform.config_loader import load_environments

    return load_environments(directory)
