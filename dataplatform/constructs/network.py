"""Private network: custom-mode VPC, one subnet, NAT for egress, firewall by service account.

Allow rules name their targets and sources by *service account*, never by network tag: anyone
who may set tags on a VM (instance admins, the CI deployer) could tag any VM `dataproc` and
reach every port of the cluster; a service account can only be attached by those holding
actAs on it, which the bootstrap stack grants per account.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktn_provider_google.compute_firewall import (
    ComputeFirewall,
    ComputeFirewallAllow,
    ComputeFirewallDeny,
    ComputeFirewallLogConfig,
)
from cdktn_provider_google.compute_network import ComputeNetwork
from cdktn_provider_google.compute_router import ComputeRouter
from cdktn_provider_google.compute_router_nat import (
    ComputeRouterNat,
    ComputeRouterNatLogConfig,
    ComputeRouterNatSubnetwork,
)
from cdktn_provider_google.compute_subnetwork import ComputeSubnetwork, ComputeSubnetworkLogConfig
from constructs import Construct

from dataplatform.naming import Namer

IAP_RANGE = "35.235.240.0/20"
"""Source range of Identity-Aware Proxy TCP forwarding; the only way in from outside."""

AIRFLOW_UI_PORT = 8080
DATAFLOW_SHUFFLE_PORTS = "12345-12346"


@dataclass(frozen=True)
class NetworkSettings:
    namer: Namer
    region: str
    subnet_cidr: str
    flow_log_sampling: float
    dataflow_identity: str
    """Email of the Dataflow workers' service account (shuffle ports between them)."""
    dataproc_identity: str
    """Email of the Dataproc nodes' service account (all ports between them)."""
    iap_identities: tuple[str, ...] = ()
    """Emails of the VMs operators reach through IAP (SSH and the Airflow UI); none: no IAP rule."""
    flow_log_interval: str = "INTERVAL_5_MIN"
    flow_log_metadata: str = "EXCLUDE_ALL_METADATA"


class Network(Construct):
    """Nothing here is reachable from 0.0.0.0/0; ingress is IAP or intra-workload only."""

    def __init__(self, scope: Construct, id_: str, settings: NetworkSettings):
        super().__init__(scope, id_)
        namer = self._namer = settings.namer
        self._metadata = settings.flow_log_metadata
        self.region = settings.region
        self.vpc = ComputeNetwork(
            self,
            "vpc",
            name=namer.resource("vpc"),
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            delete_default_routes_on_create=False,
        )
        self.subnet = ComputeSubnetwork(
            self,
            "subnet",
            name=namer.resource(settings.region),
            network=self.vpc.id,
            region=settings.region,
            ip_cidr_range=settings.subnet_cidr,
            private_ip_google_access=True,
            log_config=ComputeSubnetworkLogConfig(
                aggregation_interval=settings.flow_log_interval,
                flow_sampling=settings.flow_log_sampling,
                metadata=settings.flow_log_metadata,
            ),
        )
        self.router = router = ComputeRouter(self, "router", name=namer.resource("router"), network=self.vpc.id, region=settings.region)
        self.nat = ComputeRouterNat(
            self,
            "nat",
            name=namer.resource("nat"),
            router=router.name,
            region=settings.region,
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="LIST_OF_SUBNETWORKS",
            subnetwork=[ComputeRouterNatSubnetwork(name=self.subnet.id, source_ip_ranges_to_nat=["ALL_IP_RANGES"])],
            log_config=ComputeRouterNatLogConfig(enable=True, filter="ERRORS_ONLY"),
        )
        if settings.iap_identities:
            self._firewall("allow-iap-airflow", "IAP to the Airflow VM: SSH and the Airflow UI",
                           sources=[IAP_RANGE], targets=list(settings.iap_identities),
                           allow=[("tcp", ["22", str(AIRFLOW_UI_PORT)])])
        self._firewall("allow-dataflow-workers", "Dataflow shuffle/streaming between workers",
                       source_accounts=[settings.dataflow_identity], targets=[settings.dataflow_identity],
                       allow=[("tcp", [DATAFLOW_SHUFFLE_PORTS])])
        self._firewall("allow-dataproc-internal", "Dataproc nodes talk to each other on all ports",
                       source_accounts=[settings.dataproc_identity], targets=[settings.dataproc_identity],
                       allow=[("tcp", ["0-65535"]), ("udp", ["0-65535"]), ("icmp", [])])
        self._firewall("deny-all-ingress", "Default deny, logged, below every allow rule",
                       sources=["0.0.0.0/0"], deny=[("all", [])], priority=65534)

    def _firewall(self, component: str, description: str, *, sources=None, source_accounts=None, targets=None,
                  allow=(), deny=(), priority: int = 1000) -> ComputeFirewall:
        return ComputeFirewall(
            self,
            component,
            name=self._namer.resource(f"fw-{component}"),
            description=description,
            network=self.vpc.id,
            direction="INGRESS",
            priority=priority,
            source_ranges=sources,
            source_service_accounts=source_accounts,
            target_service_accounts=targets,
            allow=[ComputeFirewallAllow(protocol=p, ports=ports or None) for p, ports in allow] or None,
            deny=[ComputeFirewallDeny(protocol=p, ports=ports or None) for p, ports in deny] or None,
            log_config=ComputeFirewallLogConfig(metadata=self._metadata),  # same cost trade-off as the flow logs
        )

    @property
    def network_id(self) -> str:
        return self.vpc.id

    @property
    def subnet_path(self) -> str:
        """`regions/<r>/subnetworks/<name>` as a plain string: Dataflow's `subnetwork` form, and
        usable where a Terraform reference cannot go (base64 Scheduler bodies, JSON env vars)."""
        return f"regions/{self.region}/subnetworks/{self._namer.resource(self.region)}"

    @property
    def subnet_self_link(self) -> str:
        return self.subnet.self_link

