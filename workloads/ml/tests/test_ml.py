"""The ML workload on its own: every statement parses as BigQuery SQL for every model of every
environment file, the Vertex AI pipeline compiles to the committed spec and has the expected
graph, and the statement builder refuses what BigQuery would."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import sqlglot
import yaml
from sqlglot import exp

from workloads.ml import pipeline, sql

REPO = Path(__file__).resolve().parents[3]
# Every environments/*.yaml, parsed once: file stem -> data.
ENVIRONMENTS = {path.stem: yaml.safe_load(path.read_text()) for path in sorted((REPO / "environments").glob("*.yaml"))}


def _environment_models() -> list[tuple[str, sql.ModelSql]]:
    """ModelSql for each model of each environments/*.yaml, named like the platform names them."""
    out = []
    for stem, env in ENVIRONMENTS.items():
        base = f"{env['name_prefix']}_{env['name']}".replace("-", "_")
        for model in (env.get("ml") or {}).get("models", []):
            schema = {c["name"]: c for p in env["pipelines"] if p["name"] == model["pipeline"] for c in p["schema"]}
            out.append((f"{stem}:{model['name']}", sql.ModelSql(
                project=env["project_id"], source_dataset=f"{base}_warehouse", source_table=model["pipeline"],
                ml_dataset=f"{base}_ml", model=model["name"], model_type=model["model_type"], label=model["label"],
                label_type=schema[model["label"]]["type"], features=tuple(model["features"]), key=model["key"],
                predictions_table=model["predictions_table"], register_in_vertex=env["profile"] == "managed",
                min_quality=model.get("min_quality", 0.0))))
    return out


MODELS = _environment_models()
IDS = [name for name, _ in MODELS]


def parse(statement: str) -> exp.Expression:
    (tree,) = sqlglot.parse(statement, read="bigquery", error_level=sqlglot.ErrorLevel.RAISE)
    return tree


def test_every_environment_declaring_models_is_covered():
    """The parametrised tests below run for the models of every environment file that declares some
    (the shipped files all do; none is named here)."""
    declared = {stem for stem, env in ENVIRONMENTS.items() if (env.get("ml") or {}).get("models")}
    assert declared and {name.split(":")[0] for name in IDS} == declared


@pytest.mark.parametrize("model", [m for _, m in MODELS], ids=IDS)
def test_training_parses_and_reads_only_declared_columns(model):
    tree = parse(sql.train(model))
    assert isinstance(tree, exp.Create) and tree.args["kind"].upper() == "MODEL"
    select = tree.find(exp.Select)
    assert [c.name for c in select.expressions] == [*model.features, model.label]
    assert select.find(exp.Where).find(exp.Is) is not None  # unlabelled rows are not trained on
    options = {p.this.name.lower(): p.args["value"].sql(dialect="bigquery") for p in tree.find(exp.Properties).expressions}
    assert options["model_type"] == f"'{model.model_type}'" and options["max_iterations"] == str(model.max_iterations)
    assert options["input_label_cols"] == f"['{model.label}']"
    assert (options.get("model_registry") == "'VERTEX_AI'") is model.register_in_vertex


@pytest.mark.parametrize("model", [m for _, m in MODELS], ids=IDS)
def test_prediction_merges_on_the_key_and_inserts_only_new_rows(model):
    for run_id in (f"@{sql.RUN_ID_PARAMETER}", sql.scheduled_run_id(model)):
        tree = parse(sql.predict(model, run_id))
        assert isinstance(tree, exp.Merge)
        assert tree.this.sql(dialect="bigquery") == f"{model.predictions_ref} AS target"
        whens = tree.args["whens"].expressions
        assert len(whens) == 1 and whens[0].args.get("matched") is False  # never updates, never deletes
        on = tree.args["on"].sql(dialect="bigquery")
        assert f"target.{model.key} = prediction.{model.key}" in on and "target.model = prediction.model" in on
        inserted = [c.name for c in whens[0].args["then"].this.expressions]
        assert inserted == ["run_id", "predicted_at", "model", model.key, model.prediction_column]
        assert tree.find(exp.Predict).this.sql(dialect="bigquery") == model.model_ref
        inner = [s for s in tree.find_all(exp.Select) if any(c.name == model.key for c in s.expressions)][-1]
        assert [c.name for c in inner.expressions] == [model.key, *model.features]
        assert "_PARTITIONTIME" in inner.find(exp.Where).sql(dialect="bigquery")


@pytest.mark.parametrize("model", [m for _, m in MODELS], ids=IDS)
def test_evaluation_asserts_the_quality_bar(model):
    text = sql.evaluate(model)
    evaluate_call = f"ML.EVALUATE(MODEL {model.model_ref})"
    assert text.startswith(f"ASSERT (SELECT {model.quality_metric} FROM {evaluate_call}) >= {model.min_quality}\nAS '")
    # sqlglot knows neither ASSERT nor ML.EVALUATE: parse the rest with the model read as a table.
    tree = parse(text.split("\nAS '")[0].replace("ASSERT ", "SELECT ", 1).replace(evaluate_call, model.model_ref))
    assert tree.find(exp.Column).name == model.quality_metric


def test_predictions_schema_matches_the_merge():
    _, model = MODELS[0]
    names = [c["name"] for c in sql.predictions_schema(model, "STRING")]
    assert names == ["run_id", "predicted_at", "model", model.key, model.prediction_column]
    assert sql.predictions_schema(model, "STRING")[-1]["type"] == ("FLOAT" if model.regressor else model.label_type)


@pytest.mark.parametrize("field, ok, bad", [("lookback_days", 30, 31), ("max_iterations", 100, 101), ("min_quality", 1.0, 1.01)])
def test_model_bounds(field, ok, bad):
    _, model = MODELS[0]
    assert getattr(dataclasses.replace(model, **{field: ok}), field) == ok
    with pytest.raises(ValueError, match="lookback_days 1-30"):
        dataclasses.replace(model, **{field: bad})


@pytest.mark.parametrize("changes, message", [
    ({"features": ("amount; DROP TABLE x",)}, "not plain BigQuery identifiers"),
    ({"model_type": "AUTOML_REGRESSOR"}, "unsupported model type"),
    ({"key": "amount"}, "must be distinct"),
    ({"project": "Bad_Project"}, "invalid project id"),
])
def test_model_refuses_what_bigquery_would(changes, message):
    _, model = MODELS[0]
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(model, **changes)


@pytest.mark.parametrize("run_id, expected", [
    ("2026-01-01_10_00_00-123", "predict_m_2026-01-01_10_00_00-123"),
    ("3f2a9c1e-aaaa-bbbb-cccc-000000000000", "predict_m_3f2a9c1e-aaaa-bbbb-cccc-000000000000"),
    ("a b/c:d", "predict_m_a_b_c_d"),
])
def test_job_ids_are_valid_and_deterministic(run_id, expected):
    assert sql.job_id("predict_m", run_id) == expected
    assert len(sql.job_id("p", "x" * 2000)) == 1024


# ---------------------------------------------------------------- the Vertex AI pipeline


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict:
    path = pipeline.compile_pipeline(tmp_path_factory.mktemp("kfp") / "pipeline.yaml")
    return yaml.safe_load(path.read_text())


def test_committed_spec_is_the_compiled_source(compiled):
    committed = yaml.safe_load(pipeline.COMPILED.read_text())
    assert committed == compiled, "run `python -m workloads.ml.pipeline` in the ML venv and commit the result"


def test_pipeline_graph(compiled):
    assert compiled["pipelineInfo"]["name"] == pipeline.PIPELINE_NAME
    assert sorted(compiled["root"]["inputDefinitions"]["parameters"]) == sorted(pipeline.PARAMETERS)
    tasks = compiled["root"]["dag"]["tasks"]
    assert {t["taskInfo"]["name"] for t in tasks.values()} == {"train", "evaluate", "predict"}
    by_name = {t["taskInfo"]["name"]: t for t in tasks.values()}
    names = {key: t["taskInfo"]["name"] for key, t in tasks.items()}
    assert "dependentTasks" not in by_name["train"]
    assert [names[d] for d in by_name["evaluate"]["dependentTasks"]] == ["train"]
    assert [names[d] for d in by_name["predict"]["dependentTasks"]] == ["evaluate"]
    for task in tasks.values():
        assert task["cachingOptions"].get("enableCache") is not True  # every run queries afresh
        assert task["retryPolicy"]["maxRetryCount"] == 1
        inputs = task["inputs"]["parameters"]
        assert inputs["run_id"]["runtimeValue"]["constant"] == "{{$.pipeline_job_uuid}}"  # job ids unique per run
        assert inputs["sql"]["componentInputParameter"] == f"{task['taskInfo']['name']}_sql"


def test_every_step_is_a_capped_bq_job(compiled):
    executors = compiled["deploymentSpec"]["executors"].values()
    assert len(executors) == 3  # train, evaluate, predict
    for executor in executors:
        container = executor["container"]
        assert container["image"] == pipeline.CLOUD_SDK_IMAGE and container["command"] == ["bq"]
        args = container["args"]
        assert "--maximum_bytes_billed" in args and "--job_id" in args and "--nouse_legacy_sql" in args
        assert container["resources"]["cpuLimit"] == 1.0 and container["resources"]["memoryLimit"] == 2.0


# ---------------------------------------------------------------- the statements on demo rows


def _demo_rows(schema: dict, count: int = 40, seed: int = 7) -> list[dict]:
    """Rows shaped like the pipeline's table (columns and types from the environment file), every
    fifth without a label value, as the ETL loads them."""
    import random

    rng = random.Random(seed)
    make = {"STRING": lambda i: f"C{rng.randrange(20):03d}", "INTEGER": lambda i: rng.randrange(1, 20),
            "NUMERIC": lambda i: round(rng.uniform(1, 500), 2), "FLOAT": lambda i: rng.random(),
            "BOOLEAN": lambda i: rng.random() < 0.5, "TIMESTAMP": lambda i: f"2024-06-{1 + i % 28:02d}T10:00:00Z",
            "DATE": lambda i: f"2024-06-{1 + i % 28:02d}"}
    return [{name: (f"order-{i}" if name == "order_id" else make[c["type"]](i)) for name, c in schema.items()} | {"_PARTITIONTIME": None}
            for i in range(count)]


@pytest.mark.parametrize("model", [m for _, m in MODELS], ids=IDS)
def test_statements_select_the_right_rows_of_demo_data(model):
    """Run the training query's SELECT and the prediction's source SELECT with sqlglot's executor."""
    from sqlglot.executor import execute

    env = next(env for env in ENVIRONMENTS.values() if env["project_id"] == model.project)
    schema = {c["name"]: c for p in env["pipelines"] if p["name"] == model.source_table for c in p["schema"]}
    rows = _demo_rows(schema)
    for i, row in enumerate(rows):
        if i % 5 == 0:
            row[model.label] = None
    tables = {model.project: {model.source_dataset: {model.source_table: rows}}}

    training = execute(parse(sql.train(model)).find(exp.Select), dialect="bigquery", tables=tables)
    assert training.columns == (*model.features, model.label)
    assert len(training.rows) == 32 and all(r[-1] is not None for r in training.rows)  # unlabelled rows left out

    merge = parse(sql.predict(model))
    source = [s for s in merge.find_all(exp.Select) if any(c.name == model.key for c in s.expressions)][-1].copy()
    source.set("where", None)  # the ingestion-day window: every demo row is in it
    scored = execute(source, dialect="bigquery", tables=tables)
    assert scored.columns == (model.key, *model.features)
    assert sorted(r[0] for r in scored.rows) == sorted(r[model.key] for r in rows)  # unlabelled rows are predicted too
