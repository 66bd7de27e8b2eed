"""Airflow for the two profiles: a private VM behind IAP (lean) or Cloud Composer 3 (managed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cdktn_provider_google.composer_environment import ComposerEnvironment
from cdktn_provider_google.compute_instance import ComputeInstance, ComputeInstanceNetworkInterface
from cdktn_provider_google.compute_instance_iam_member import ComputeInstanceIamMember
from cdktn_provider_google.iap_tunnel_instance_iam_member import IapTunnelInstanceIamMember
from constructs import Construct

from dataplatform import tfjson
from dataplatform.config import AirflowVmSettings, ComposerSettings
from dataplatform.constructs.iam import Principal, grant_member, grant_project_roles
from dataplatform.constructs.network import AIRFLOW_UI_PORT
from dataplatform.constructs.service_account import WorkloadIdentityRef

STARTUP_TEMPLATE = Path(__file__).parent / "templates" / "airflow_startup.sh"
VM_IMAGE = "debian-cloud/debian-12"


def render_startup_script(airflow_version: str, dags_url: str) -> str:
    """The shell script as the VM receives it (placeholders filled in)."""
    script = STARTUP_TEMPLATE.read_text()
    for key, value in {"__AIRFLOW_VERSION__": airflow_version, "__DAGS_URL__": dags_url, "__UI_PORT__": str(AIRFLOW_UI_PORT)}.items():
        script = script.replace(key, value)
    return script


@dataclass(frozen=True)
class AirflowVmSpec:
    name: str
    zone: str
    subnet_self_link: str
    identity: WorkloadIdentityRef
    operators: Principal
    dags_url: str
    settings: AirflowVmSettings


class AirflowVm(Construct):
    """No external IP, Shielded VM, OS Login; operators reach SSH/UI only via IAP tunnels.

    The firewall admits IAP to this VM by its service account. OS Login to a VM running as a
    service account also needs actAs on that account, which the bootstrap stack grants the
    operators (workload_identities.act_as_grants)."""

    def __init__(self, scope: Construct, id_: str, spec: AirflowVmSpec):
        super().__init__(scope, id_)
        s = spec.settings
        self.instance = ComputeInstance(
            self,
            "vm",
            name=spec.name,
            zone=spec.zone,
            machine_type=s.machine_type,
            boot_disk={"initialize_params": {"image": VM_IMAGE, "size": s.disk_size_gb, "type": "pd-balanced"}},
            network_interface=[ComputeInstanceNetworkInterface(subnetwork=spec.subnet_self_link)],  # no access_config: no external IP
            service_account={"email": spec.identity.email, "scopes": ["cloud-platform"]},
            shielded_instance_config={"enable_secure_boot": True, "enable_vtpm": True, "enable_integrity_monitoring": True},
            metadata={"enable-oslogin": "TRUE", "block-project-ssh-keys": "TRUE", "serial-port-enable": "FALSE"},
            metadata_startup_script=tfjson.literal(render_startup_script(s.airflow_version, spec.dags_url)),
            allow_stopping_for_update=True,
            deletion_protection=False,
        )
        target = {"instance": self.instance.name, "zone": spec.zone}
        grant_member(self, IapTunnelInstanceIamMember, "iap-operators", "roles/iap.tunnelResourceAccessor", spec.operators,
                     on_owner=True, **target)
        grant_member(self, ComputeInstanceIamMember, "oslogin-operators", "roles/compute.osAdminLogin", spec.operators,
                     on_owner=True, instance_name=self.instance.name, zone=spec.zone)

        self.name = spec.name

    @property
    def health_filter(self) -> str:
        """Monitoring filter whose absence means the VM is down."""
        return ('metric.type="compute.googleapis.com/instance/uptime" AND resource.type="gce_instance" '
                f'AND metric.label.instance_name="{self.name}"')


@dataclass(frozen=True)
class ComposerSpec:
    name: str
    project: str
    project_number: str
    region: str
    network_id: str
    subnet_id: str
    identity: WorkloadIdentityRef
    operators: Principal
    high_resilience: bool
    settings: ComposerSettings
    env_variables: dict[str, str] = field(default_factory=dict)


class Composer(Construct):
    """Composer 3, private (no public IPs, private builds), its own SA, size from config.

    Composer's service agent acts for the environment's account (composer.ServiceAgentV2Ext on
    that account, granted by the bootstrap stack, which also creates the agent). The account
    needs composer.worker at project level, as Composer documents; residual risk (README): that
    role carries project-wide storage.objects.*, so DAG code can touch every bucket.
    """

    def __init__(self, scope: Construct, id_: str, spec: ComposerSpec):
        super().__init__(scope, id_)
        s = spec.settings
        grant_project_roles(self, spec.project, spec.identity.principal, {
            "roles/composer.worker": "Composer requires it on the environment's service account (project-scoped role)"})
        grant_project_roles(self, spec.project, spec.operators, {
            "roles/composer.user": "operators open the Airflow UI; environments have no resource-level IAM"})
        self.environment = ComposerEnvironment(
            self,
            "environment",
            name=spec.name,
            region=spec.region,
            config={
                "environment_size": s.environment_size,
                "resilience_mode": "HIGH_RESILIENCE" if spec.high_resilience else "STANDARD_RESILIENCE",
                "enable_private_environment": True,
                "enable_private_builds_only": True,
                "node_config": {"network": spec.network_id, "subnetwork": spec.subnet_id, "service_account": spec.identity.email},
                "software_config": {"image_version": s.image_version, "env_variables": spec.env_variables},
                "workloads_config": {
                    "scheduler": {"cpu": 1, "memory_gb": 2, "storage_gb": 1, "count": s.scheduler_count},
                    "web_server": {"cpu": 1, "memory_gb": 2, "storage_gb": 1},
                    "worker": {"cpu": 1, "memory_gb": 4, "storage_gb": 5, "min_count": 1, "max_count": s.max_workers},
                    "triggerer": {"cpu": 0.5, "memory_gb": 1, "count": 1},
                },
                "maintenance_window": {
                    "start_time": s.maintenance_start,
                    "end_time": _plus_hours(s.maintenance_start, s.maintenance_hours),
                    "recurrence": s.maintenance_recurrence,
                },
            },
        )

        self.name = spec.name

    @property
    def health_filter(self) -> str:
        """Monitoring filter of Composer's own health metric (true while healthy)."""
        return ('metric.type="composer.googleapis.com/environment/healthy" AND resource.type="cloud_composer_environment" '
                f'AND resource.label.environment_name="{self.name}"')


def _plus_hours(rfc3339: str, hours: int) -> str:
    from datetime import datetime, timedelta

    start = datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    return (start + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
