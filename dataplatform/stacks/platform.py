"""`<env>-platform`: the data platform of one environment, as a wiring diagram."""

from __future__ import annotations

from cdktn import GcsBackend, TerraformOutput
from constructs import Construct

from dataplatform.config import Environment, SlaTier
from dataplatform.constructs.iam import Principal
from dataplatform.constructs.lake_bucket import BucketKind, LakeBucket, LakeBucketSettings
from dataplatform.constructs.network import Network, NetworkSettings
from dataplatform.constructs.secret import Secret, SecretSettings
from dataplatform.constructs.warehouse import Warehouse, WarehouseSettings
from dataplatform.constructs.workload_identities import WorkloadIdentities, WorkloadIdentitiesSettings
from dataplatform.stacks.base import EnvironmentStack
from dataplatform.stacks.bootstrap import state_bucket_name

LAKE_BUCKETS: dict[str, tuple[BucketKind, str]] = {
    "landing": (BucketKind.DATA, "raw Parquet arrivals, one managed folder per pipeline"),
    "curated": (BucketKind.DATA, "validated rows as Parquet"),
    "quarantine": (BucketKind.DATA, "rejected rows with their reason"),
    "control": (BucketKind.CONTROL, "ETL checkpoints per pipeline (written by the ETL, never by Terraform)"),
    "temp": (BucketKind.TEMP, "Dataflow/Dataproc temp and staging files"),
    "artifacts": (BucketKind.ARTIFACTS, "function sources, Flex Template specs, DAGs"),
}


class PlatformStack(EnvironmentStack):
    def __init__(self, scope: Construct, id_: str, env: Environment):
        super().__init__(scope, id_, env)
        GcsBackend(self, bucket=state_bucket_name(env), prefix=f"{env.name}/platform")
        namer, project = env.namer, env.project_id
        pipelines = [p.name for p in env.pipelines]

        self.network = Network(self, "network", NetworkSettings(
            namer=namer, region=env.region,
            subnet_cidr=env.network.subnet_cidr, flow_log_sampling=env.network.flow_log_sampling,
        ))
        deployer = Principal("ci-deployer", f"serviceAccount:{self.service_account_email('ci-deploy')}")
        self.identities = ids = WorkloadIdentities(self, "identities", WorkloadIdentitiesSettings(
            namer=namer, project=project, deployer=deployer,
        ))

        self.buckets = b = {
            key: LakeBucket(self, key, self._bucket_settings(key, kind, purpose, folders=tuple(pipelines) if key == "landing" else ()))
            for key, (kind, purpose) in LAKE_BUCKETS.items()
        }
        self.warehouse = Warehouse(self, "warehouse", WarehouseSettings(
            dataset_id=namer.dataset("warehouse"), location=env.bigquery_location, pipelines=tuple(env.pipelines),
        ))
        self.mail_secret = Secret(self, "mail-api-key", SecretSettings(
            secret_id=namer.secret("sendgrid-api-key"), purpose="SendGrid API key for quarantine alert mails",
        ))

        # --- who may touch what (every grant scoped to the resource it is made on)
        for pipeline in pipelines:
            b["landing"].grant_create_in(pipeline, ids["uploader"].principal)
        etl = ids["etl-worker"].principal
        b["landing"].grant_read(etl)
        b["curated"].grant_read_write(etl)
        b["quarantine"].grant_create(etl)
        b["control"].grant_read_write(etl)
        b["temp"].grant_read_write(etl)
        b["artifacts"].grant_read(etl)
        self.warehouse.grant_write(etl)
        self.mail_secret.grant_access(etl)

        for launcher in (ids["launcher"].principal, ids["orchestrator"].principal):
            ids["etl-worker"].grant_act_as(launcher)
            b["artifacts"].grant_read(launcher)
        self.warehouse.grant_read(ids["orchestrator"].principal)

        analyst = ids["dataproc"].principal
        b["curated"].grant_read(analyst)
        b["temp"].grant_read_write(analyst)
        self.warehouse.grant_read(analyst)

        b["artifacts"].grant_read_write(ids["build"].principal)

        for key, bucket in b.items():
            TerraformOutput(self, f"{key}_bucket", value=bucket.name)
        TerraformOutput(self, "dataset", value=self.warehouse.dataset_id)

    def _bucket_settings(self, key: str, kind: BucketKind, purpose: str, folders: tuple[str, ...]) -> LakeBucketSettings:
        env, storage = self.env, self.env.storage
        dual = key == "landing" and env.sla_tier == SlaTier.high
        return LakeBucketSettings(
            name=self.namer.bucket(key),
            location=storage.dual_region if dual else env.region,
            kind=kind,
            purpose=purpose,
            nearline_after_days=storage.nearline_after_days,
            coldline_after_days=storage.coldline_after_days,
            noncurrent_version_days=storage.noncurrent_version_days,
            temp_object_days=storage.temp_object_days,
            soft_delete_days=storage.soft_delete_days,
            folders=folders,
        )
