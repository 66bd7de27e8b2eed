"""The BigQuery ML statements of one model: train, evaluate, predict. Standard library only.

The infrastructure imports this at synth (scheduled queries, the prediction workflow) and the
Vertex AI pipeline receives the same text as run-time parameters, so the lean and managed
profiles run the very same SQL. `workloads/ml/tests` parse every statement as BigQuery SQL.

Prediction is idempotent: it MERGEs on the model's key, so a row is predicted once whichever
run (event-driven, catch-up, Vertex pipeline) gets to it first, and a rerun inserts nothing.
The run that made a prediction is recorded in `run_id` (the ETL run for event-driven runs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

REGRESSORS = frozenset({"LINEAR_REG", "BOOSTED_TREE_REGRESSOR"})
MODEL_TYPES = REGRESSORS | {"LOGISTIC_REG", "BOOSTED_TREE_CLASSIFIER"}
# BigQuery column type of the source schema -> type of the prediction column.
_PREDICTION_TYPE = {"INTEGER": "INTEGER", "STRING": "STRING", "BOOLEAN": "BOOLEAN"}
RUN_ID_PARAMETER = "run_id"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
INGESTION_TIME = "_PARTITIONTIME"


@dataclass(frozen=True)
class ModelSql:
    """Everything the statements need about one model (plain data: built from config at synth)."""

    project: str
    source_dataset: str
    source_table: str
    ml_dataset: str
    model: str
    model_type: str
    label: str
    label_type: str
    features: tuple[str, ...]
    key: str
    predictions_table: str
    max_iterations: int = 20
    lookback_days: int = 3
    min_quality: float = 0.0
    register_in_vertex: bool = False
    partition_column: str = INGESTION_TIME
    """Column the source table is partitioned on; prediction scans only the last lookback_days."""

    def __post_init__(self) -> None:
        if not _PROJECT.match(self.project):
            raise ValueError(f"invalid project id {self.project!r}")
        names = (self.source_dataset, self.source_table, self.ml_dataset, self.model, self.label, self.key,
                 self.predictions_table, *self.features)
        bad = [n for n in names if not _IDENTIFIER.match(n)]
        if bad:
            raise ValueError(f"not plain BigQuery identifiers: {bad}")
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"unsupported model type {self.model_type!r}")
        if self.label in self.features or self.key in self.features or self.key == self.label:
            raise ValueError("label, key and features must be distinct columns")
        if not (1 <= self.lookback_days <= 30 and 1 <= self.max_iterations <= 100 and 0 <= self.min_quality <= 1):
            raise ValueError("lookback_days 1-30, max_iterations 1-100, min_quality 0-1")

    @property
    def regressor(self) -> bool:
        return self.model_type in REGRESSORS

    @property
    def model_ref(self) -> str:
        return f"`{self.project}.{self.ml_dataset}.{self.model}`"

    @property
    def source_ref(self) -> str:
        return f"`{self.project}.{self.source_dataset}.{self.source_table}`"

    @property
    def predictions_ref(self) -> str:
        return f"`{self.project}.{self.ml_dataset}.{self.predictions_table}`"

    @property
    def prediction_column(self) -> str:
        """The column ML.PREDICT adds: `predicted_<label>`."""
        return f"predicted_{self.label}"

    @property
    def quality_metric(self) -> str:
        return "r2_score" if self.regressor else "roc_auc"


def train(m: ModelSql) -> str:
    """CREATE OR REPLACE MODEL on every labelled row; with Vertex AI, each training is a new
    version of the same Model Registry entry."""
    options = [f"model_type = '{m.model_type}'", f"input_label_cols = ['{m.label}']", f"max_iterations = {m.max_iterations}"]
    if m.register_in_vertex:
        options += ["model_registry = 'VERTEX_AI'", f"vertex_ai_model_id = '{m.model}'"]
    columns = ", ".join((*m.features, m.label))
    return (
        f"CREATE OR REPLACE MODEL {m.model_ref}\n"
        f"OPTIONS ({', '.join(options)}) AS\n"
        f"SELECT {columns}\nFROM {m.source_ref}\nWHERE {m.label} IS NOT NULL"
    )


def evaluate(m: ModelSql) -> str:
    """Fails (ASSERT) when the freshly trained model is below min_quality, so nothing predicts with it."""
    return (
        f"ASSERT (SELECT {m.quality_metric} FROM ML.EVALUATE(MODEL {m.model_ref})) >= {m.min_quality}\n"
        f"AS '{m.model}: {m.quality_metric} below {m.min_quality}'"
    )


def _window(m: ModelSql, column: str, days: int) -> str:
    if column == INGESTION_TIME:
        return f"{column} >= TIMESTAMP_SUB(TIMESTAMP_TRUNC(CURRENT_TIMESTAMP(), DAY), INTERVAL {days} DAY)"
    return f"{column} >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL {days} DAY)"


def predict(m: ModelSql, run_id: str = f"@{RUN_ID_PARAMETER}") -> str:
    """MERGE the predictions of the source rows of the last lookback_days not yet predicted.

    `run_id` is a SQL expression: the `@run_id` query parameter (event-driven runs and the
    Vertex pipeline), or an expression of `@run_time` for Data Transfer scheduled queries.
    The target is scanned one day further back than the source, so any earlier prediction of a
    source row in the window is found (a row is predicted after it was loaded).
    """
    features = ", ".join(f"source.{c}" for c in (m.key, *m.features))
    inserted = ("run_id", "predicted_at", "model", m.key, m.prediction_column)
    return (
        f"MERGE {m.predictions_ref} AS target\n"
        "USING (\n"
        f"  SELECT {run_id} AS run_id, CURRENT_TIMESTAMP() AS predicted_at, '{m.model}' AS model, "
        f"{m.key}, {m.prediction_column}\n"
        f"  FROM ML.PREDICT(MODEL {m.model_ref}, (\n"
        f"    SELECT {features}\n"
        f"    FROM {m.source_ref} AS source\n"
        f"    WHERE source.{_window(m, m.partition_column, m.lookback_days)}\n"
        "  ))\n"
        ") AS prediction\n"
        f"ON target.{m.key} = prediction.{m.key} AND target.model = prediction.model\n"
        f"  AND target.{_window(m, 'predicted_at', m.lookback_days + 1)}\n"
        f"WHEN NOT MATCHED THEN INSERT ({', '.join(inserted)})\n"
        f"  VALUES ({', '.join(f'prediction.{c}' for c in inserted)})"
    )


def scheduled_run_id(m: ModelSql) -> str:
    """run_id of a Data Transfer (catch-up) run: its scheduled time, which the service passes as @run_time."""
    return "CONCAT('scheduled-', FORMAT_TIMESTAMP('%Y%m%dT%H%M', @run_time))"


def predictions_schema(m: ModelSql, key_type: str) -> list[dict[str, str]]:
    """The predictions table's BigQuery schema (declared in Terraform)."""
    prediction_type = "FLOAT" if m.regressor else _PREDICTION_TYPE[m.label_type]
    return [
        {"name": "run_id", "type": "STRING", "mode": "REQUIRED", "description": "ETL run (or scheduled/pipeline run) that predicted the row"},
        {"name": "predicted_at", "type": "TIMESTAMP", "mode": "REQUIRED", "description": "When the prediction was made (partitioning column)"},
        {"name": "model", "type": "STRING", "mode": "REQUIRED", "description": "Model that predicted"},
        {"name": m.key, "type": key_type, "mode": "REQUIRED", "description": f"{m.source_table}.{m.key} of the predicted row"},
        {"name": m.prediction_column, "type": prediction_type, "mode": "NULLABLE", "description": f"Predicted {m.label}"},
    ]


def job_id(prefix: str, run_id: str) -> str:
    """A BigQuery job id (letters, digits, _ and -, at most 1,024) unique per (prefix, run)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{prefix}_{run_id}")[:1024]
