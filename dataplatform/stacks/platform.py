"""`<env>-platform`: the data platform of one environment, as a wiring diagram."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields

from cdktn import Fn, GcsBackend, TerraformOutput
from constructs import Construct

from dataplatform.config import Environment, Pipeline, Profile, Promotion, ScheduledBy, SlaTier
from dataplatform.constructs.dag_deployment import DagDeployment, DagDeploymentSpec
from dataplatform.constructs.analytics import AnalyticsCluster, AnalyticsClusterSpec
from dataplatform.constructs.budget import Budget, BudgetSpec
from dataplatform.constructs.catalog import TableScans, TableScansSpec
from dataplatform.constructs.etl_build import EtlBuild, EtlBuildSpec
from dataplatform.constructs.iam import Principal, grant_project_role_if, service_agent
from dataplatform.constructs.observability import (
    Alerts, AlertSpec, ChannelsSpec, NotificationChannels, absent, quarantine_metric, threshold,
)
from dataplatform.constructs.orchestration import AirflowVm, AirflowVmSpec, Composer, ComposerSpec
from dataplatform.constructs.followups import FollowUpQueue, FollowUpQueueProps, queue_path
from dataplatform.constructs.processing.image_repository import ImageRepository
from dataplatform.constructs.processing.launch_contract import etl_launch_config
from dataplatform.constructs.processing.launcher import Launcher, LauncherSpec
from dataplatform.constructs.processing.scheduled_launches import ScheduledLaunches, ScheduledLaunchSpec
from dataplatform.constructs.lake_bucket import BucketKind, LakeBucket, LakeBucketSettings
from dataplatform.constructs.network import Network, NetworkSettings
from dataplatform.constructs.secret import SecretRef, secret_id
from dataplatform.constructs.warehouse import Warehouse, WarehouseSettings
from dataplatform.constructs.workload_identities import WorkloadIdentityRefs, WorkloadIdentityRefsSettings, workloads_of
from dataplatform.ordering import DependencyPlan, wire_consumers
from dataplatform.constructs.dashboard import BudgetRelay, BudgetRelaySpec, Dashboard, DashboardSpec
from dataplatform.constructs.ml import MlModelSpec, MlPlatform, MlPlatformSpec, WorkbenchSpec
from dataplatform.constructs.service_levels import PipelineLevels, ServiceLevels, ServiceLevelsSpec
from workloads.ml.sql import ModelSql
from dataplatform.stacks.base import EnvironmentStack
from dataplatform.state import platform_state_prefix, state_bucket_name
from workloads.launcher.launch_request import PIPELINE_LABEL, ROUTED_BY_QUEUE, cloud_event_headers, pipeline_label, run_request

ARCHIVE_FOLDER = "_archive"  # landing/_archive/<pipeline>/: loaded files (no pipeline name starts with "_")


def _bucket(kind: BucketKind):
    """A LakeBuckets field: the bucket's kind (how it is protected and aged)."""
    return field(metadata={"kind": kind})


@dataclass(frozen=True)
class LakeBuckets:
    """The environment's buckets by role, each field's metadata saying its kind (the one list: the
    stack creates one bucket per field, in this order): wiring reads `buckets.landing`, never a
    string key."""

    # Raw Parquet arrivals, one managed folder per pipeline; loaded files move to _archive/.
    landing: LakeBucket = _bucket(BucketKind.DATA)
    curated: LakeBucket = _bucket(BucketKind.DATA)  # validated rows as Parquet
    quarantine: LakeBucket = _bucket(BucketKind.DATA)  # rejected rows with their reason
    control: LakeBucket = _bucket(BucketKind.CONTROL)  # ETL checkpoints per pipeline (written by the ETL, never by Terraform)
    temp: LakeBucket = _bucket(BucketKind.TEMP)  # Dataflow/Dataproc temp and staging files
    artifacts: LakeBucket = _bucket(BucketKind.ARTIFACTS)  # function sources, Flex Template specs, DAGs
    # Jupyter notebooks (notebooks/jupyter) and Dataproc staging files. Kept and versioned: the
    # cluster only stops when idle, and notebooks are people's work.
    notebooks: LakeBucket = _bucket(BucketKind.CONTROL)

    def items(self) -> list[tuple[str, LakeBucket]]:
        """(role, bucket) in field order: one output per bucket."""
        return [(f.name, getattr(self, f.name)) for f in fields(self)]


FUNCTION_IMAGES_REPOSITORY = "gcf-artifacts"
"""Where Cloud Functions gen2 pushes the images it builds (created by the service on first deploy)."""


class PlatformStack(EnvironmentStack):
    def __init__(self, scope: Construct, id_: str, env: Environment):
        super().__init__(scope, id_, env)
        GcsBackend(self, bucket=state_bucket_name(env), prefix=platform_state_prefix(env))
        namer, project = env.namer, env.project_id
        pipelines = [p.name for p in env.pipelines]

        # The workload accounts exist already: the bootstrap stack creates them and decides who may
        # act as them; here they get their project roles and grants on the resources below.
        self.identities = ids = WorkloadIdentityRefs(self, "identities", WorkloadIdentityRefsSettings(
            namer=namer, project=project, workloads=workloads_of(env)))
        self.network = Network(self, "network", NetworkSettings(
            namer=namer, region=env.region,
            subnet_cidr=env.network.subnet_cidr, flow_log_sampling=env.network.flow_log_sampling,
            flow_log_interval=env.network.flow_log_interval.value, flow_log_metadata=env.network.flow_log_metadata.value,
            dataflow_identity=ids["etl-worker"].email, dataproc_identity=ids["dataproc"].email,
            iap_identities=(ids["orchestrator"].email,) if env.profile is Profile.lean else (),
        ))

        self.buckets = b = LakeBuckets(**{
            f.name: LakeBucket(self, f.name, self._bucket_settings(
                f.name, f.metadata["kind"],
                folders=(*pipelines, ARCHIVE_FOLDER) if f.name == "landing" else ()))
            for f in fields(LakeBuckets)
        })
        self.warehouse = Warehouse(self, "warehouse", WarehouseSettings(
            dataset_id=namer.dataset("warehouse"), location=env.bigquery_location, pipelines=tuple(env.pipelines),
        ))
        # Created (and its readers chosen) by the bootstrap stack; the value is added by hand.
        self.mail_secret = SecretRef(project, secret_id(namer, "mail-api-key"))

        # --- who may touch what (every grant scoped to the resource it is made on)
        for pipeline in pipelines:
            b.landing.grant_create_in(pipeline, ids["uploader"].principal)
        etl = ids["etl-worker"].principal
        b.landing.grant_read(etl)
        b.curated.grant_read_write(etl)
        b.quarantine.grant_read_write(etl)  # reruns rewrite the same quarantine object
        b.control.grant_read_write(etl)
        b.temp.grant_read_write(etl)
        b.artifacts.grant_read(etl)
        self.warehouse.grant_write(etl)

        for launcher in (ids["launcher"].principal, ids["orchestrator"].principal):
            b.artifacts.grant_read(launcher)
        self.warehouse.grant_read(ids["orchestrator"].principal)

        analyst = ids["dataproc"].principal
        b.curated.grant_read(analyst)
        b.temp.grant_read_write(analyst)
        b.notebooks.grant_read_write(analyst)  # staging files and notebooks
        self.warehouse.grant_read(analyst)

        b.artifacts.grant_read_write(ids["build"].principal)  # writes the template spec
        fn_build = ids["fn-build"].principal
        b.artifacts.grant_read(fn_build)  # reads the function's source zip
        grant_project_role_if(self, project, fn_build, "roles/artifactregistry.writer", title="function-images",
                              expression=(f"resource.name.startsWith('projects/{project}/locations/{env.region}"
                                          f"/repositories/{FUNCTION_IMAGES_REPOSITORY}')"),
                              reason="pushes the launcher's image to the repository Cloud Functions creates on first deploy "
                                     "(it does not exist before, so no resource-level grant is possible)")

        self._processing()
        self._orchestration()
        self._analytics()
        self._catalog()
        self._observability()
        self._service_levels()
        self._ml()

        for key, bucket in b.items():
            TerraformOutput(self, f"{key}_bucket", value=bucket.name)
        TerraformOutput(self, "dataset", value=self.warehouse.dataset_id)
        TerraformOutput(self, "template_spec_uri", value=self.template_spec_uri)

    # ------------------------------------------------------------------ processing

    def _processing(self) -> None:
        env, namer, ids, b = self.env, self.namer, self.identities, self.buckets
        self.images = ImageRepository(self, "images", repository_id=namer.resource("etl"), region=env.region, project=env.project_id)
        self.images.grant_push(ids["build"].principal)
        self.images.grant_pull(ids["etl-worker"].principal)
        self.template_spec_uri = b.artifacts.url("templates/etl.json")
        # The queue's path, known before the queue (which targets the launcher's URL): the one value the
        # launcher, the ETL's parameters and the Scheduler jobs are given.
        followup_name = namer.resource("etl-followups")
        self.followup_queue = followup_queue = queue_path(env.project_id, env.region, followup_name)
        self.launch_configs = {p.name: etl_launch_config(p, parameters=self._etl_parameters(p), environment={
            "serviceAccountEmail": self.service_account_email("etl-worker"),
            "subnetwork": self.network.subnet_path,
            "ipConfiguration": "WORKER_IP_PRIVATE",
            "tempLocation": b.temp.url("dataflow/tmp"),
            "stagingLocation": b.temp.url("dataflow/staging"),
            "additionalUserLabels": env.all_labels,
        }) for p in env.pipelines}
        # Every pipeline is in the launcher's config: arrivals route only to on_arrival ones, but
        # every run request (schedule, backlog, deferral) of any pipeline is decided there.
        self.launcher = Launcher(self, "launcher", LauncherSpec(
            name=namer.resource("launcher"), project=env.project_id, project_number=env.project_number,
            region=env.region, landing=b.landing, artifacts=b.artifacts, identity=ids["launcher"], build_identity=ids["fn-build"],
            template_spec_uri=self.template_spec_uri, pipelines=self.launch_configs,
            max_instances=env.processing.launcher_max_instances, memory=env.processing.launcher_memory,
            followup_queue=followup_queue, max_active_jobs=env.processing.max_concurrent_jobs,
        ))
        self.followups = FollowUpQueue(self, "followups", FollowUpQueueProps(
            name=followup_name, project=env.project_id, region=env.region,
            target_uri=self.launcher.uri, invoker=ids["launcher"],
            max_concurrent_dispatches=env.processing.launcher_max_instances,
        ))
        self.followups.grant_enqueue(ids["launcher"].principal)  # deferrals, arrival follow-ups, Scheduler ticks
        self.followups.grant_enqueue(ids["etl-worker"].principal)  # a run that leaves work asks for the next
        # On-call re-runs a failed load by asking the launcher (runbook_job_failed), never by re-uploading.
        self.followups.grant_enqueue(Principal.group("operators", env.operators_group))
        if env.orchestration.scheduled_by is ScheduledBy.airflow:
            self.followups.grant_enqueue(ids["orchestrator"].principal)  # the DAGs request their scheduled runs
        # The ETL moves loaded files out of the landing folders: delete there, create in _archive/ only.
        for p in env.pipelines:
            b.landing.grant_read_write_in(p.name, ids["etl-worker"].principal)
        b.landing.grant_create_in(ARCHIVE_FOLDER, ids["etl-worker"].principal)
        schedules = {p.name: p.schedule for p in env.pipelines if p.scheduled}
        if schedules and env.orchestration.scheduled_by is ScheduledBy.cloud_scheduler:
            ScheduledLaunches(self, "schedules", ScheduledLaunchSpec(
                project=env.project_id, region=env.region, identity=ids["launcher"],
                job_names={p: namer.pipeline_resource(p) for p in schedules},
                followup_queue=followup_queue, schedules=schedules,
            ))
        # The token secret, and the Cloud Build agent's read grant on it, come from the bootstrap stack.
        self.oauth_secret = SecretRef(env.project_id, secret_id(namer, "github-oauth-token"))
        EtlBuild(self, "etl-build", EtlBuildSpec(
            name=namer.resource("github"), trigger_name=namer.resource("etl-image"), region=env.region,
            repository=env.github.repository, branch=env.cicd.branch, app_installation_id=env.cicd.github_app_installation_id,
            oauth_token_version=self.oauth_secret.version(env.cicd.oauth_token_secret_version),
            identity=ids["build"], image=f"{self.images.image_base}/etl", template_path=self.template_spec_uri,
            require_approval=env.cicd.promotion is Promotion.approval,
        ))

    def _etl_parameters(self, pipeline: Pipeline) -> dict[str, str]:
        """The ETL's Flex Template parameters for one pipeline (workloads/etl contract)."""
        env, b, name = self.env, self.buckets, pipeline.name
        return {
            "pipeline": name,
            "landing_prefix": b.landing.url(f"{name}/"),
            "schema": json.dumps([f.model_dump(exclude_none=True, mode="json") for f in pipeline.schema_], sort_keys=True),
            "output_table": self.warehouse.table_ref(env.project_id, name),
            "curated_prefix": b.curated.url(f"{name}/"),
            "quarantine_prefix": b.quarantine.url(f"{name}/"),
            "checkpoint_uri": b.control.url(f"checkpoints/{name}.json"),
            "alert_secret": self.mail_secret.latest_version(env.project_id),
            "alert_to": ",".join(env.alert_emails),
            "alert_from": env.alert_emails[0],
            "archive_prefix": b.landing.url(f"{ARCHIVE_FOLDER}/{name}/"),
            "max_files_per_run": str(pipeline.max_files_per_run),
            "max_bytes_per_run": str(pipeline.max_bytes_per_run),
            "max_file_attempts": str(pipeline.max_file_attempts),
            "max_loads_per_day": str(pipeline.max_loads_per_day),
            "followup_queue": self.followup_queue,
        }

    # --------------------------------------------------------------- orchestration

    def _orchestration(self) -> None:
        env, namer, ids = self.env, self.namer, self.identities
        operators = Principal.group("operators", env.operators_group)
        if env.profile is Profile.lean:
            self.orchestrator = AirflowVm(self, "airflow", AirflowVmSpec(
                name=namer.resource("airflow"), zone=f"{env.region}-{env.orchestration.airflow_vm.zone_suffix}",
                subnet_self_link=self.network.subnet_self_link, identity=ids["orchestrator"], operators=operators,
                dags_url=self.buckets.artifacts.url("dags"), settings=env.orchestration.airflow_vm,
            ))
            dag_bucket = self.buckets.artifacts.name
        else:
            self.orchestrator = Composer(self, "composer", ComposerSpec(
                name=namer.resource("composer"), project=env.project_id, project_number=env.project_number,
                region=env.region, network_id=self.network.network_id, subnet_id=self.network.subnet.id,
                identity=ids["orchestrator"], operators=operators, high_resilience=env.sla_tier is SlaTier.high,
                settings=env.orchestration.composer, env_variables={
                    "DP_PROJECT": env.project_id, "DP_REGION": env.region, "DP_TEMPLATE_SPEC_URI": self.template_spec_uri,
                    "DP_DATASET": self.warehouse.dataset_id, "DP_LANDING_BUCKET": self.buckets.landing.name,
                    "DP_ARTIFACTS_BUCKET": self.buckets.artifacts.name,
                },
            ))
            # gs://<composer bucket>/dags -> <composer bucket>
            dag_bucket = Fn.element(Fn.split("/", self.orchestrator.environment.config.dag_gcs_prefix), 2)
        pipelines = self._dag_pipelines()
        if pipelines:
            DagDeployment(self, "dags", DagDeploymentSpec(bucket=dag_bucket, prefix="dags", pipelines=pipelines))

    def _dag_pipelines(self) -> dict[str, dict]:
        """workloads/dags' pipelines.json: one DAG per scheduled pipeline; it requests runs only
        when Airflow owns the schedule (otherwise Cloud Scheduler does and the DAG checks rows).
        No launch settings: the launcher function holds the only copy and decides every launch."""
        env = self.env
        launches = env.orchestration.scheduled_by is ScheduledBy.airflow
        return {p.name: {"schedule": p.schedule, "launch": launches, "project": env.project_id, "region": env.region,
                         "output_table": self.launch_configs[p.name]["parameters"]["output_table"],
                         "followup_queue": self.launch_configs[p.name]["parameters"]["followup_queue"]}
                for p in env.pipelines if p.scheduled}

    # ------------------------------------------------------------------- analytics

    def _analytics(self) -> None:
        env = self.env
        b = self.buckets
        self.analytics = AnalyticsCluster(self, "analytics", AnalyticsClusterSpec(
            name=self.namer.resource("analytics"), autoscaling_policy_id=self.namer.resource("analytics-autoscaling"),
            region=env.region, subnet_self_link=self.network.subnet_self_link,
            identity=self.identities["dataproc"], staging_bucket=b.notebooks.name, temp_bucket=b.temp.name,
            notebooks_url=b.notebooks.url("notebooks/jupyter"),
            autoscaling=env.profile is Profile.managed, settings=env.analytics,
        ))

    def _catalog(self) -> None:
        env = self.env
        self.warehouse.grant_read(service_agent("dataplex", env.project_number))
        for pipeline in env.pipelines:
            TableScans(self, f"scans-{pipeline.name}", TableScansSpec(
                profile_scan_id=self.namer.pipeline_resource(pipeline.name, "profile"),
                quality_scan_id=self.namer.pipeline_resource(pipeline.name, "quality"), region=env.region, project=env.project_id,
                dataset_id=self.warehouse.dataset_id, pipeline=pipeline,
            ))

    # --------------------------------------------------------------- observability

    def _observability(self) -> None:
        env, namer = self.env, self.namer
        channels = NotificationChannels(self, "channels", ChannelsSpec(emails=tuple(env.alert_emails), prefix=namer.base))
        self.alerts = alerts = Alerts(self, "alerts", channels=channels, prefix=namer.base)
        alerts.add(AlertSpec("dataflow-failed", "Dataflow ETL job failed", runbook_job_failed(env), threshold(
            'metric.type="dataflow.googleapis.com/job/is_failed" AND resource.type="dataflow_job"', value=0)))
        for p in env.pipelines:
            alerts.add(AlertSpec(f"dataflow-slow-{p.name}", f"ETL {p.name} over its {p.max_runtime_minutes} min budget",
                                 RUNBOOK_JOB_SLOW, threshold(
                'metric.type="dataflow.googleapis.com/job/elapsed_time" AND resource.type="dataflow_job" '
                f'AND metadata.user_labels."{PIPELINE_LABEL}"="{pipeline_label(p.name)}"', value=p.max_runtime_minutes * 60)))
        if self.launcher is not None:  # always: every run is decided by the launcher
            alerts.add(AlertSpec("launcher-errors", "Launcher function errors", RUNBOOK_LAUNCHER, {"condition_matched_log": {
                "filter": f'resource.type="cloud_run_revision" AND resource.labels.service_name="{self.launcher.name}" AND severity>=ERROR'}},
                log_based=True))
        metric = quarantine_metric(self, "quarantine-metric", namer.resource("etl-quarantined-runs"))
        alerts.add(AlertSpec("quarantined-rows", "ETL quarantined rows", RUNBOOK_QUARANTINE, threshold(
            f'metric.type="logging.googleapis.com/user/{metric.name}"',
            value=0, aligner="ALIGN_SUM")))  # metric.name is a reference: the policy waits for the metric
        if env.profile is Profile.lean:
            alerts.add(AlertSpec("orchestrator-down", "Airflow VM down", runbook_orchestrator(env), absent(self.orchestrator.health_filter)))
        else:
            alerts.add(AlertSpec("orchestrator-unhealthy", "Composer environment unhealthy", runbook_orchestrator(env), threshold(
                self.orchestrator.health_filter, value=0.9, comparison="COMPARISON_LT", aligner="ALIGN_FRACTION_TRUE",
                duration="600s")))
        self.budget = Budget(self, "budget", BudgetSpec(
            name=namer.resource("budget"), topic_name=namer.resource("budget-alerts"),
            billing_account=env.billing_account, project_number=env.project_number,
            amount=env.budget.amount, currency=env.budget.currency, channel_ids=channels.ids,
        ))

    def wire_dependencies(self, plan: DependencyPlan) -> None:
        """Consumers wait for their grants, Cloud NAT and the tables they scan (dataplatform/ordering.py)."""
        wire_consumers(plan, self.grant_ledger, self.env.project_number)

    # -------------------------------------------------------------- service levels

    def _service_levels(self) -> None:
        """SLOs per pipeline from the ETL's log events (contract C1), their alerts, the dashboard."""
        env, namer = self.env, self.namer
        metric_ids = {key: namer.metric(f"etl_{key}") for key in ("runs", "arrival_to_load", "loaded_rows", "quarantined_rows")}
        levels = []
        for p in env.pipelines:
            level = env.service_level(p)
            levels.append(PipelineLevels(
                pipeline=p.name, service_id=namer.pipeline_resource(p.name, "etl"), success_goal=level.success_goal,
                freshness_goal=level.freshness_goal, freshness_seconds=level.freshness_minutes * 60,
                alert_after_hours_without_success=level.alert_after_hours_without_success))
        self.service_levels = ServiceLevels(self, "service-levels", ServiceLevelsSpec(
            project=env.project_id, env=env.name, metric_ids=metric_ids, pipelines=tuple(levels)), alerts=self.alerts)
        relay = BudgetRelay(self, "budget-relay", BudgetRelaySpec(
            namer=namer, project=env.project_id, region=env.region, topic_id=self.budget.topic.id, identity=self.identities["budget-relay"]))
        Dashboard(self, "dashboard", DashboardSpec(
            title=f"Data platform {env.name}", metric_ids=metric_ids, spend_metric=relay.metric_type,
            slo_names={f"{p} {slo}": s.name for (p, slo), s in self.service_levels.slos.items()},
            budget_amount=env.budget.amount, currency=env.budget.currency, labels=env.all_labels))

    # ---------------------------------------------------------------------------- ML

    def _ml(self) -> None:
        """Models on the loaded tables (optional): BigQuery ML jobs; managed adds Vertex AI + Workbench."""
        env, namer = self.env, self.namer
        if env.ml is None:
            return
        managed = env.profile is Profile.managed
        dataset = namer.dataset("ml")
        models = []
        for m in env.ml.models:
            pipeline = env.pipeline(m.pipeline)
            label, key = pipeline.column(m.label), pipeline.column(m.key)
            minute, hour = m.retrain_schedule.split()[:2]
            models.append(MlModelSpec(
                sql=ModelSql(project=env.project_id, source_dataset=self.warehouse.dataset_id, source_table=pipeline.name,
                             ml_dataset=dataset, model=m.name, model_type=m.model_type.value, label=label.name,
                             label_type=label.type.value, features=tuple(pipeline.column(f).name for f in m.features),
                             key=key.name, predictions_table=m.predictions_table, max_iterations=m.max_iterations,
                             lookback_days=m.lookback_days, min_quality=m.min_quality, register_in_vertex=managed),
                key_type=key.type.value, retrain_cron=m.retrain_schedule, max_bytes_billed=m.max_gb_billed * 10**9,
                catchup_cron=f"{minute} {(int(hour) + 1) % 24} * * *"))
        workbench = None
        if managed:
            wb = env.ml.workbench
            workbench = WorkbenchSpec(
                name=namer.resource("workbench"), zone=f"{env.region}-{wb.zone_suffix}", machine_type=wb.machine_type,
                idle_shutdown_minutes=wb.idle_shutdown_minutes, network=self.network.network_id,
                subnet=self.network.subnet.id, users=Principal.group("data-scientists", env.ml.data_scientists_group))
        self.ml = MlPlatform(self, "ml", MlPlatformSpec(
            namer=namer, project=env.project_id, region=env.region, bigquery_location=env.bigquery_location,
            dataset_id=dataset, models=tuple(models), source_tables=self.warehouse.tables,
            identities=self.identities.by_key, artifacts=self.buckets.artifacts,
            temp=self.buckets.temp, vertex=managed, workbench=workbench, labels=env.all_labels))
        self.alerts.add(AlertSpec("ml-jobs-failed", "ML jobs failed", RUNBOOK_ML, {"condition_matched_log": {"filter": (
            f'resource.type="workflows.googleapis.com/Workflow" AND resource.labels.workflow_id="{namer.resource("ml-jobs")}" '
            'AND severity>=ERROR')}}, log_based=True))

    def _bucket_settings(self, key: str, kind: BucketKind, folders: tuple[str, ...]) -> LakeBucketSettings:
        env, storage = self.env, self.env.storage
        dual = key == "landing" and env.sla_tier == SlaTier.high
        return LakeBucketSettings(
            name=self.namer.bucket(key),
            location=storage.dual_region if dual else env.region,
            kind=kind,
            nearline_after_days=storage.nearline_after_days,
            coldline_after_days=storage.coldline_after_days,
            noncurrent_version_days=storage.noncurrent_version_days,
            temp_object_days=storage.temp_object_days,
            soft_delete_days=storage.soft_delete_days,
            folders=folders,
        )


def runbook_job_failed(env: Environment) -> str:
    """What on-call does when an ETL job failed, for how this environment launches runs. A re-run goes
    through the launcher (a run request in the follow-up queue), never a re-upload: a re-uploaded file
    is a new object generation, which the ETL loads again."""
    headers = " ".join(f"--header={k}:{v}" for k, v in cloud_event_headers("rerun-<pipeline>-<n>").items())
    request = (f"`gcloud tasks create-http-task --queue={env.namer.resource('etl-followups')} --location={env.region} "
               f"--url={ROUTED_BY_QUEUE} --method=POST --header=Content-Type:application/json {headers} "
               f"--body-content='{json.dumps(run_request('<pipeline>', 'backlog'), sort_keys=True)}'` "
               "(the launcher starts it, or follows the job still running)")
    if env.orchestration.scheduled_by is ScheduledBy.cloud_scheduler:
        other = "or force-run the pipeline's Cloud Scheduler job (`gcloud scheduler jobs run`, if it has a schedule)"
    else:
        other = "or clear the failed task of the pipeline's DAG run in Airflow"
    return f"""
A Dataflow ETL job failed. 1. Open the job in the Dataflow console (label `env`) and read the
first error in the job logs. 2. Schema or data errors: fix the source or the pipeline schema in
`environments/{env.name}.yaml`. 3. Re-run: the checkpoint was not advanced, so a new run
reprocesses exactly the files not yet loaded. Ask the launcher for one (the operators group may
enqueue there): {request}; {other}.
Do not re-upload a file to trigger a run: the new object generation would be loaded again.
"""


def runbook_orchestrator(env: Environment) -> str:
    """What on-call does when the orchestrator is down, and what keeps running meanwhile."""
    if env.orchestration.scheduled_by is ScheduledBy.cloud_scheduler:
        meanwhile = ("Scheduled loads continue meanwhile: Cloud Scheduler launches them; only the DAGs' row checks "
                     "wait until Airflow is back.")
    else:
        meanwhile = ("Scheduled loads are launched by Airflow in this environment: they are delayed until it "
                     "recovers (check the missed DAG runs afterwards; Airflow catches up on the schedule).")
    if any(p.on_arrival for p in env.pipelines):
        meanwhile += " Per-arrival loads continue through the launcher function."
    if env.profile is Profile.lean:
        what = """The Airflow VM reports no uptime. `gcloud compute instances describe` for its status; start it
if stopped. Connect with `gcloud compute ssh --tunnel-through-iap` (operators group) and check
`systemctl status airflow-scheduler airflow-webserver`; the startup script reinstalls on boot."""
    else:
        what = """Composer reports the environment unhealthy. Open Monitoring > Composer for the failing
component (scheduler, workers, database) and the environment's logs."""
    return f"\n{what}\n{meanwhile}\n"


RUNBOOK_JOB_SLOW = """
An ETL job runs longer than its configured budget (`max_runtime_minutes`). Check the job graph
for a stuck stage and the autoscaling history: at `max_workers` the pipeline is under-sized
(raise it in the environment file); if workers are idle, look for a hot key or a slow sink.
Cancel with `gcloud dataflow jobs cancel` only after checking the checkpoint has not advanced.
"""
RUNBOOK_LAUNCHER = """
The launcher function logged errors. Read the function's logs: a 4xx from the Dataflow API
usually means a missing template spec (run the Cloud Build trigger) or a permission change;
Eventarc retries failed deliveries, so once fixed, arrivals are launched again.
"""
RUNBOOK_QUARANTINE = """
An ETL run quarantined rows. The summary mail lists counts; the rows and the reason for each
are in the quarantine bucket under `<pipeline>/`. Fix at the source and re-deliver the file,
or correct the schema rule if the data is right.
"""
RUNBOOK_ML = """
An ML job failed (the `ml-jobs` workflow logged an error). Its execution in the Workflows console
names the BigQuery job (`<step>_<model>_<run>`); the job's error says why: a schema change (update
`ml:` in the environment file), `maximumBytesBilled` exceeded (raise `max_gb_billed` or lower
`lookback_days`), or a missing model (the first training has not run: run the train schedule).
Predictions missed now are made by the daily catch-up run; nothing is predicted twice.
"""
