"""The managed profile's Vertex AI pipeline: retrain a BigQuery ML model, check it, predict.

    PIPENV_PIPFILE=workloads/ml/Pipfile pipenv run python -m workloads.ml.pipeline   # (re)compile

One pipeline for every model and environment: what differs (project, SQL, cost cap) arrives as
run-time parameters from the Cloud Scheduler job that starts each run, built from the same
`workloads/ml/sql.py` the lean profile schedules. Compiled at build time into
`workloads/ml/compiled/train_and_predict.yaml` (committed: synth never imports kfp; a test
fails when the compiled file and this source disagree); the platform stack uploads it to the
artifacts bucket, where Vertex AI reads it (`templateUri`).

Each step is a container running the `bq` CLI from Google's Cloud SDK image: nothing is
pip-installed at run time, and every step is a BigQuery job with a deterministic job id and
`--maximum_bytes_billed`. Training registers a new model version in the Vertex AI Model
Registry (`model_registry = 'VERTEX_AI'` in the CREATE MODEL options); the evaluation step
fails the run (ASSERT) below the quality bar, so a bad model never predicts.
"""

# (no `from __future__ import annotations`: kfp reads the parameter annotations as types)

from pathlib import Path

from kfp import compiler, dsl

CLOUD_SDK_IMAGE = "gcr.io/google.com/cloudsdktool/google-cloud-cli:slim"
PIPELINE_NAME = "train-and-predict"
COMPILED = Path(__file__).resolve().parent / "compiled" / "train_and_predict.yaml"
PARAMETERS = ("project", "location", "model", "train_sql", "evaluate_sql", "predict_sql", "max_bytes_billed")
CPU_LIMIT, MEMORY_LIMIT = "1", "2G"  # a step only submits a BigQuery job and waits


def _bq(project, location, step, model, run_id) -> list:
    job_id = dsl.ConcatPlaceholder([step, "_", model, "_", run_id])  # one job per step and pipeline run
    return ["--headless", "--project_id", project, "--location", location, "--job_id", job_id, "query",
            "--nouse_legacy_sql", "--format", "none"]


@dsl.container_component
def bq_statement(project: str, location: str, step: str, model: str, run_id: str, max_bytes_billed: int, sql: str):
    """Run one BigQuery statement (or script) as job `<step>_<model>_<run_id>`; the step fails with the job."""
    return dsl.ContainerSpec(image=CLOUD_SDK_IMAGE, command=["bq"], args=[
        *_bq(project, location, step, model, run_id), "--maximum_bytes_billed", max_bytes_billed, sql])


@dsl.container_component
def bq_predict(project: str, location: str, step: str, model: str, run_id: str, max_bytes_billed: int, sql: str):
    """The prediction MERGE, with this pipeline run's id as the @run_id query parameter."""
    return dsl.ContainerSpec(image=CLOUD_SDK_IMAGE, command=["bq"], args=[
        *_bq(project, location, step, model, run_id), "--maximum_bytes_billed", max_bytes_billed,
        "--parameter", dsl.ConcatPlaceholder(["run_id::", run_id]), sql])


def _step(component, name: str, sql, **common):
    task = component(step=name, sql=sql, run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER, **common)
    return task.set_display_name(name).set_cpu_limit(CPU_LIMIT).set_memory_limit(MEMORY_LIMIT) \
        .set_caching_options(False).set_retry(1)


@dsl.pipeline(name=PIPELINE_NAME, description="Retrain a BigQuery ML model (new Model Registry version), check its quality, predict on new rows")
def train_and_predict(project: str, location: str, model: str, train_sql: str, evaluate_sql: str, predict_sql: str,
                      max_bytes_billed: int):
    common = {"project": project, "location": location, "model": model, "max_bytes_billed": max_bytes_billed}
    train = _step(bq_statement, "train", train_sql, **common)
    evaluate = _step(bq_statement, "evaluate", evaluate_sql, **common).after(train)
    _step(bq_predict, "predict", predict_sql, **common).after(evaluate)


def compile_pipeline(path: Path = COMPILED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(train_and_predict, str(path))
    return path


if __name__ == "__main__":
    print(compile_pipeline())
