"""Models on the ETL's data: BigQuery ML jobs run by one workflow (lean), plus a Vertex AI
pipeline and a Workbench instance (managed).

Every ML job is a BigQuery job started by the `ml-jobs` workflow, which gives each job a
deterministic id (`<step>_<model>_<run>`) and a `maximumBytesBilled` cap:
- after each successful or partial ETL load: the ETL's `etl_run_summary` entry (contract C1)
  -> log sink -> Pub/Sub -> Eventarc -> workflow -> `predict` with job id from the ETL's run_id
  (a redelivered event finds the job already there: HTTP 409, nothing runs twice);
- on the model's retrain cron (lean): Cloud Scheduler -> workflow -> `train`;
- once a day for every model: a catch-up `predict` (Eventarc does not retry a workflow that
  started and then failed; the MERGE on the key makes the catch-up insert only what is missing).
managed: the retrain cron starts the Vertex AI pipeline (train -> evaluate -> predict) instead.

Why not Data Transfer scheduled queries (documented: no per-query byte cap, schedules in their
own syntax, and a run cannot carry the ETL's run id) or DAG tasks (arrival-triggered loads never
pass through Airflow, and the lean profile's Airflow VM may be stopped): README, ML.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping

from cdktn import TerraformResourceLifecycle
from cdktn_provider_google.bigquery_table import BigqueryTable, BigqueryTableTimePartitioning
from cdktn_provider_google.bigquery_table_iam_member import BigqueryTableIamMember
from cdktn_provider_google.cloud_scheduler_job import CloudSchedulerJob
from cdktn_provider_google.logging_project_sink import LoggingProjectSink
from cdktn_provider_google.pubsub_topic import PubsubTopic
from cdktn_provider_google.pubsub_topic_iam_member import PubsubTopicIamMember
from cdktn_provider_google.workbench_instance import (
    WorkbenchInstance,
    WorkbenchInstanceGceSetup,
    WorkbenchInstanceGceSetupNetworkInterfaces,
    WorkbenchInstanceGceSetupServiceAccounts,
    WorkbenchInstanceGceSetupShieldedInstanceConfig,
    WorkbenchInstanceGceSetupVmImage,
)
from cdktn_provider_google.workbench_instance_iam_member import WorkbenchInstanceIamMember
from cdktn_provider_google.workflows_workflow import WorkflowsWorkflow
from constructs import Construct

from dataplatform import tfjson
from dataplatform.config import REPO_ROOT
from dataplatform.constructs.assets import upload
from dataplatform.constructs.events import api_call, pubsub_to_workflow
from dataplatform.constructs.iam import Principal, ResourceIam
from dataplatform.constructs.lake_bucket import LakeBucket
from dataplatform.constructs.service_account import WorkloadIdentityRef
from dataplatform.constructs.service_levels import LOADED_OUTCOMES, run_summary_filter
from dataplatform.constructs.warehouse import Warehouse, WarehouseSettings
from dataplatform.naming import Namer
from workloads.ml import sql
from workloads.ml.sql import ModelSql

PIPELINE_SPEC = REPO_ROOT / "workloads" / "ml" / "compiled" / "train_and_predict.yaml"
WORKBENCH_IMAGE = {"project": "cloud-notebooks-managed", "family": "workbench-instances"}


@dataclass(frozen=True)
class MlModelSpec:
    sql: ModelSql
    key_type: str
    retrain_cron: str
    max_bytes_billed: int
    catchup_cron: str
    """Daily catch-up prediction (an hour after the retrain time of day)."""


@dataclass(frozen=True)
class WorkbenchSpec:
    name: str
    zone: str
    machine_type: str
    idle_shutdown_minutes: int
    network: str
    subnet: str
    users: Principal


@dataclass(frozen=True)
class MlPlatformSpec:
    namer: Namer
    project: str
    region: str
    bigquery_location: str
    dataset_id: str
    models: tuple[MlModelSpec, ...]
    source_tables: Mapping[str, BigqueryTable]
    """pipeline -> its warehouse table (Warehouse.tables): the models' sources, read-only grants on each.
    The grants reference the table, so Terraform creates them after it (BigQuery answers 404 before)."""
    identities: Mapping[str, WorkloadIdentityRef]
    """The ML accounts (ml-runner, ml-trigger; managed: ml-pipeline, ml-workbench), created with their
    project roles and actAs grants by the bootstrap stack (workload_identities.ML_WORKLOADS)."""
    artifacts: LakeBucket
    temp: LakeBucket
    vertex: bool = False
    workbench: WorkbenchSpec | None = None
    labels: dict[str, str] = field(default_factory=dict)


class MlDataset(Warehouse):
    """The ML dataset: models and predictions tables, apart from the warehouse, so the ML
    identities write here and only read the warehouse's tables. A warehouse without pipelines
    (same dataset settings, same grants: `grant_write` is dataEditor on this dataset only, to
    create/replace models and merge predictions); `tables` holds the predictions table of each model."""

    def __init__(self, scope: Construct, id_: str, *, dataset_id: str, location: str, models: tuple[MlModelSpec, ...]):
        super().__init__(scope, id_, WarehouseSettings(dataset_id=dataset_id, location=location, pipelines=(),
                                                       description="BigQuery ML models and their predictions"))
        for m in models:
            self.tables[m.sql.model] = BigqueryTable(
                self, f"predictions-{m.sql.model}", dataset_id=self.dataset.dataset_id, table_id=m.sql.predictions_table,
                description=f"Predictions of model {m.sql.model} on {m.sql.source_table}, one row per {m.sql.key}",
                schema=json.dumps(sql.predictions_schema(m.sql, m.key_type)),
                time_partitioning=BigqueryTableTimePartitioning(type="DAY", field="predicted_at"),
                clustering=[m.sql.key], deletion_protection=True, lifecycle=TerraformResourceLifecycle(prevent_destroy=True))


class EventTopic(Construct, ResourceIam):
    """A Pub/Sub topic that only its named publishers may publish to."""

    _iam_member_class = PubsubTopicIamMember

    def __init__(self, scope: Construct, id_: str, *, name: str, retention: str = "86400s"):
        super().__init__(scope, id_)
        self.topic = PubsubTopic(self, "topic", name=name, message_retention_duration=retention)
        self.id: str = self.topic.id

    def _iam_target(self):
        return {"topic": self.topic.name}

    def grant_publish(self, principal: Principal) -> None:
        self.bind("roles/pubsub.publisher", principal)


class Notebook(Construct, ResourceIam):
    """A Workbench instance; access is granted on the instance itself."""

    _iam_member_class = WorkbenchInstanceIamMember

    def __init__(self, scope: Construct, id_: str, *, zone: str, **instance):
        super().__init__(scope, id_)
        self.instance = WorkbenchInstance(self, "instance", location=zone, **instance)
        self._zone = zone

    def _iam_target(self):
        return {"name": self.instance.name, "location": self._zone}

    def grant_use(self, principal: Principal) -> None:
        """Open the instance's JupyterLab (the principal also needs actAs on the instance's SA)."""
        self.bind("roles/notebooks.runner", principal)


class SourceTable(Construct, ResourceIam):
    """A warehouse table a model reads: read access on that one table, not the dataset.

    The members reference the table's own attributes (never plain names), so Terraform creates
    them after the table: granting on a table that does not exist yet is a 404."""

    _iam_member_class = BigqueryTableIamMember

    def __init__(self, scope: Construct, id_: str, *, table: BigqueryTable):
        super().__init__(scope, id_)
        self._table = table

    def _iam_target(self):
        return {"dataset_id": self._table.dataset_id, "table_id": self._table.table_id}

    def grant_read(self, principal: Principal) -> None:
        self.bind("roles/bigquery.dataViewer", principal)


def workflow_source(project: str, location: str, models: tuple[MlModelSpec, ...], *, train: bool) -> str:
    """The `ml-jobs` workflow (YAML; JSON is YAML). Input: a Pub/Sub CloudEvent from Eventarc
    (an ETL run summary) or `{"step": "train"|"predict", "model": ...}` from Cloud Scheduler."""
    jobs = {m.sql.model: {"pipeline": m.sql.source_table, "max_bytes": str(m.max_bytes_billed), "predict": sql.predict(m.sql),
                          **({"train": sql.train(m.sql)} if train else {})} for m in models}
    by_pipeline: dict[str, list[str]] = {}
    for m in models:
        by_pipeline.setdefault(m.sql.source_table, []).append(m.sql.model)
    insert = {"call": "googleapis.bigquery.v2.jobs.insert", "args": {"projectId": project, "body": {
        "jobReference": {"location": location, "jobId": '${text.replace_all_regex(todo.step + "_" + todo.model + "_" + run_id, "[^A-Za-z0-9_-]", "_")}'},
        "configuration": {"query": {
            "query": "${map.get(jobs[todo.model], todo.step)}", "useLegacySql": False, "parameterMode": "NAMED",
            "maximumBytesBilled": "${jobs[todo.model].max_bytes}",
            "queryParameters": [{"name": sql.RUN_ID_PARAMETER, "parameterType": {"type": "STRING"}, "parameterValue": {"value": "${run_id}"}}],
        }}}}, "result": "job"}
    workflow = {"main": {"params": ["input"], "steps": [
        {"init": {"assign": [{"jobs": jobs}, {"by_pipeline": by_pipeline}, {"todos": []}]}},
        {"route": {"switch": [{"condition": '${"data" in input}', "next": "from_etl_run"}], "next": "from_schedule"}},
        {"from_schedule": {"assign": [
            {"run_id": '${input.step + "-" + sys.get_env("GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID")}'},
            {"todos": '${[{"step": input.step, "model": input.model}]}'}], "next": "run"}},
        {"from_etl_run": {"assign": [
            {"entry": "${json.decode(base64.decode(input.data.message.data))}"},
            {"run_id": "${entry.jsonPayload.run_id}"},
            {"names": "${default(map.get(by_pipeline, entry.jsonPayload.pipeline), [])}"}]}},
        {"each_model": {"for": {"value": "name", "in": "${names}", "steps": [
            {"add": {"assign": [{"todos": '${list.concat(todos, {"step": "predict", "model": name})}'}]}}]}}},
        {"run": {"for": {"value": "todo", "in": "${todos}", "steps": [
            {"insert": {"try": insert, "except": {"as": "e", "steps": [
                {"known": {"switch": [{"condition": '${default(map.get(e, "code"), 0) == 409}', "next": "continue"}]}},  # this run's job exists: done
                {"fail": {"raise": "${e}"}}]}}}]}}},
        {"done": {"return": "${len(todos)}"}},
    ]}}
    return tfjson.literal(json.dumps(workflow, indent=1))


class MlPlatform(Construct):
    def __init__(self, scope: Construct, id_: str, spec: MlPlatformSpec):
        super().__init__(scope, id_)
        namer = spec.namer
        self.dataset = MlDataset(self, "ml", dataset_id=spec.dataset_id, location=spec.bigquery_location, models=spec.models)

        self.runner = spec.identities["ml-runner"]
        self.trigger_identity = spec.identities["ml-trigger"]
        self.sources: dict[str, SourceTable] = {}
        for m in spec.models:
            table = m.sql.source_table
            if table not in self.sources:
                self.sources[table] = SourceTable(self, f"source-{table}", table=spec.source_tables[table])
        self.grant_data(self.runner.principal)

        self.workflow = WorkflowsWorkflow(
            self, "workflow", name=namer.resource("ml-jobs"), region=spec.region,
            description="Runs the BigQuery ML jobs (deterministic job ids, byte caps) for ETL runs and schedules",
            service_account=self.runner.resource_id, call_log_level="LOG_ERRORS_ONLY",
            source_contents=workflow_source(spec.project, spec.bigquery_location, spec.models, train=not spec.vertex))
        self._after_each_load(spec)
        executions = f"https://workflowexecutions.googleapis.com/v1/{self.workflow.id}/executions"
        self.schedules: dict[str, CloudSchedulerJob] = {}
        for m in spec.models:
            runs = [("catchup", m.catchup_cron, "predict")] + ([] if spec.vertex else [("train", m.retrain_cron, "train")])
            for kind, cron, step in runs:
                self.schedules[f"{kind}-{m.sql.model}"] = CloudSchedulerJob(
                    self, f"{kind}-{m.sql.model}", name=namer.pipeline_resource(m.sql.model, kind), region=spec.region,
                    schedule=cron, time_zone="Etc/UTC", description=f"{kind} of model {m.sql.model} (ML jobs workflow)",
                    attempt_deadline="60s", retry_config={"retry_count": 2, "min_backoff_duration": "60s"},
                    http_target=api_call(executions, {"argument": json.dumps({"step": step, "model": m.sql.model}),
                                                      "callLogLevel": "LOG_ERRORS_ONLY"}, self.trigger_identity.email))
        if spec.vertex:
            self._vertex(spec)
        if spec.workbench is not None:
            self._workbench(spec, spec.workbench)

    def grant_data(self, principal: Principal) -> None:
        """What an identity running ML jobs needs on data: write the ML dataset, read each model's source table."""
        self.dataset.grant_write(principal)
        for source in self.sources.values():
            source.grant_read(principal)

    def _after_each_load(self, spec: MlPlatformSpec) -> None:
        """ETL run summary (C1) of a pipeline with a model -> Pub/Sub -> Eventarc -> the workflow."""
        namer = spec.namer
        pipelines = sorted({m.sql.source_table for m in spec.models})
        outcomes = " OR ".join(f'"{o}"' for o in LOADED_OUTCOMES)
        names = " OR ".join(f'"{p}"' for p in pipelines)
        self.topic = EventTopic(self, "runs-topic", name=namer.resource("ml-etl-runs"))
        self.sink = LoggingProjectSink(
            self, "runs-sink", name=namer.resource("ml-etl-runs"), destination=f"pubsub.googleapis.com/{self.topic.id}",
            description="ETL runs that loaded rows of a pipeline with a model: start its predictions",
            filter=(f"{run_summary_filter(spec.project)} "
                    f"AND jsonPayload.pipeline=({names}) AND jsonPayload.outcome=({outcomes}) AND jsonPayload.loaded_rows>0"),
            unique_writer_identity=True)
        self.topic.grant_publish(Principal("runs-sink", self.sink.writer_identity))  # the sink's own writer identity
        self.trigger = pubsub_to_workflow(
            self, "runs-trigger", name=namer.resource("ml-etl-runs"), location=spec.region, topic_id=self.topic.id,
            workflow_id=self.workflow.id, service_account=self.trigger_identity.email)

    def _vertex(self, spec: MlPlatformSpec) -> None:
        """Vertex AI pipeline runs on each model's retrain cron, as their own identity."""
        namer = spec.namer
        self.pipeline_identity = pipeline_sa = spec.identities["ml-pipeline"]
        self.grant_data(pipeline_sa.principal)
        spec.temp.grant_read_write(pipeline_sa.principal)  # pipeline root (run artifacts)
        spec.artifacts.grant_read(pipeline_sa.principal)  # the compiled pipeline spec
        # The request bodies are base64: they may hold no Terraform references, only plain strings.
        template_names: list[str] = []
        upload(self, "pipeline-spec", bucket=spec.artifacts.name, path=PIPELINE_SPEC,
               object_name=lambda digest: template_names.append(f"ml/pipelines/train_and_predict-{digest}.yaml") or template_names[-1])
        pipeline_email = pipeline_sa.email
        uri = f"https://{spec.region}-aiplatform.googleapis.com/v1/projects/{spec.project}/locations/{spec.region}/pipelineJobs"
        self.pipeline_runs: dict[str, CloudSchedulerJob] = {}
        for m in spec.models:
            job = {
                "displayName": f"{m.sql.model}-train-and-predict",
                "templateUri": spec.artifacts.url(template_names[0]),
                "serviceAccount": pipeline_email,
                "labels": {**spec.labels, "ml-model": m.sql.model.replace("_", "-")},
                "runtimeConfig": {"gcsOutputDirectory": spec.temp.url(f"ml/pipeline-root/{m.sql.model}"), "parameterValues": {
                    "project": spec.project, "location": spec.bigquery_location, "model": m.sql.model,
                    "train_sql": sql.train(m.sql), "evaluate_sql": sql.evaluate(m.sql), "predict_sql": sql.predict(m.sql),
                    "max_bytes_billed": m.max_bytes_billed}},
            }
            self.pipeline_runs[m.sql.model] = CloudSchedulerJob(
                self, f"pipeline-{m.sql.model}", name=namer.pipeline_resource(m.sql.model, "pipeline"), region=spec.region,
                schedule=m.retrain_cron, time_zone="Etc/UTC", description=f"Vertex AI train-and-predict run of model {m.sql.model}",
                attempt_deadline="60s", retry_config={"retry_count": 1, "min_backoff_duration": "300s"},
                http_target=api_call(uri, job, pipeline_sa.email))

    def _workbench(self, spec: MlPlatformSpec, wb: WorkbenchSpec) -> None:
        """A notebook VM in the platform subnet: no public IP, Shielded VM, stops when idle,
        its own identity; only the data scientists' group may use it."""
        self.workbench_identity = sa = spec.identities["ml-workbench"]  # the users' actAs on it: bootstrap
        self.grant_data(sa.principal)
        self.workbench = Notebook(
            self, "workbench", name=wb.name, zone=wb.zone, disable_proxy_access=False, enable_third_party_identity=False,
            gce_setup=WorkbenchInstanceGceSetup(  # typed structs: jsii drops lists nested in plain dicts
                machine_type=wb.machine_type,
                disable_public_ip=True,
                enable_ip_forwarding=False,
                network_interfaces=[WorkbenchInstanceGceSetupNetworkInterfaces(network=wb.network, subnet=wb.subnet, nic_type="GVNIC")],
                service_accounts=[WorkbenchInstanceGceSetupServiceAccounts(email=sa.email)],
                shielded_instance_config=WorkbenchInstanceGceSetupShieldedInstanceConfig(
                    enable_secure_boot=True, enable_vtpm=True, enable_integrity_monitoring=True),
                vm_image=WorkbenchInstanceGceSetupVmImage(**WORKBENCH_IMAGE),
                metadata={"idle-timeout-seconds": str(wb.idle_shutdown_minutes * 60), "notebook-disable-root": "true",
                          "serial-port-enable": "FALSE"},
            ))
        self.workbench.grant_use(wb.users)
