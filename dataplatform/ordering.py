"""Apply order on an empty project: what each resource must wait for, as `depends_on`.

Terraform orders only by references. A function references its service account's *email* (a
string), not the grants that let that account work, so Terraform creates the function and the
grants at once and the function's first deploy (or first event) races them. The same goes for
Composer and its account's roles, a cluster and its bucket grants, a VM whose startup script
needs Cloud NAT, a data scan and the table it reads. On an empty project the bootstrap stack's
resources likewise race the enablement of their APIs.

`WireDependencies` runs once per stack at synth (an Aspect on a leaf construct, so it sees
every construct however late it was added) and adds those `depends_on`; tests/test_ordering.py
checks the result on the synthesized graph of every environment.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import jsii
from cdktn import DefaultTokenResolver, IAspect, StringConcat, TerraformResource, TerraformStack, Tokenization
from constructs import IConstruct

from dataplatform.constructs.iam import GrantLedger, service_agent_email


@dataclass(frozen=True)
class Consumer:
    """A resource that runs as (or on behalf of) identities and must wait for their grants."""

    identity_paths: tuple[str, ...] = ()
    """Dotted attribute paths holding the service accounts it runs as (email or projects/-/serviceAccounts/<email>)."""
    agents: Callable[[dict], tuple[str, ...]] = lambda attrs: ()
    """Google service agents whose grants it relies on (keys of iam.SERVICE_AGENTS)."""
    needs_egress: bool = False
    """Boots software from the internet (startup scripts, init actions): waits for Cloud NAT."""


def _storage_events(attrs: dict) -> tuple[str, ...]:
    event = str(_get(attrs, "event_trigger.event_type") or "")
    return ("storage",) if event.startswith("google.cloud.storage.") else ()


CONSUMERS: dict[str, Consumer] = {
    "google_cloudfunctions2_function": Consumer(
        ("service_config.service_account_email", "build_config.service_account", "event_trigger.service_account_email"),
        agents=_storage_events),
    "google_cloud_run_v2_service": Consumer(("template.service_account",)),
    "google_cloud_run_v2_job": Consumer(("template.template.service_account",)),
    "google_cloud_scheduler_job": Consumer(("http_target.oauth_token.service_account_email",
                                            "http_target.oidc_token.service_account_email")),
    "google_composer_environment": Consumer(("config.node_config.service_account",), agents=lambda a: ("composer",)),
    "google_dataproc_cluster": Consumer(("cluster_config.gce_cluster_config.service_account",), needs_egress=True),
    "google_compute_instance": Consumer(("service_account.email",), needs_egress=True),
    "google_workbench_instance": Consumer(("gce_setup.service_accounts.email",), needs_egress=True),
    "google_cloudbuild_trigger": Consumer(("service_account",)),
    "google_cloudbuildv2_connection": Consumer(agents=lambda a: ("cloudbuild",)),
    "google_dataplex_datascan": Consumer(agents=lambda a: ("dataplex",)),
    "google_bigquery_data_transfer_config": Consumer(("service_account_name",)),
    "google_vertex_ai_endpoint": Consumer(),
}

_TABLE_RESOURCE = re.compile(r"//bigquery\.googleapis\.com/projects/[\w.:-]+/datasets/(\w+)/tables/([\w$-]+)")


def _get(attrs: Any, path: str) -> Any:
    for key in path.split("."):
        if isinstance(attrs, list):
            attrs = attrs[0] if attrs else None
        if not isinstance(attrs, dict):
            return None
        attrs = attrs.get(key)
    return attrs


def identity_emails(rtype: str, attrs: dict) -> list[str]:
    """Service account emails a consumer runs as (read from its final attributes)."""
    found = []
    for path in CONSUMERS[rtype].identity_paths if rtype in CONSUMERS else ():
        value = _get(attrs, path)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and "@" in item and "${" not in item:
                found.append(item.rsplit("/", 1)[-1])
    return found


def consumer_members(rtype: str, attrs: dict, project_number: str) -> list[str]:
    """IAM members whose grants the consumer needs: its identities and the agents its service uses."""
    spec = CONSUMERS[rtype]
    members = [f"serviceAccount:{e}" for e in identity_emails(rtype, attrs)]
    members += [f"serviceAccount:{service_agent_email(s, project_number)}" for s in spec.agents(attrs)]
    return members


def scanned_tables(attrs: dict) -> list[tuple[str, str]]:
    """(dataset, table) a data scan or other consumer reads, from `//bigquery.googleapis.com/...` paths."""
    return _TABLE_RESOURCE.findall(str(attrs))


_TYPES: dict[type, str] = {}


def resource_type(resource: TerraformResource) -> str:
    """The Terraform type of a provider class, read from jsii once per class."""
    cls = type(resource)
    if cls not in _TYPES:
        _TYPES[cls] = resource.terraform_resource_type
    return _TYPES[cls]


def _body(resource: TerraformResource) -> dict:
    doc = resource.to_terraform()
    (items,) = doc["resource"].values()
    (body,) = items.values()
    return body


class DependencyPlan:
    """`depends_on` to add, collected per resource and written once (a second override of the same
    path would replace the first). Rendered as plain `type.logical_id` addresses, the only form
    Terraform accepts in depends_on; entries a construct set itself are kept."""

    def __init__(self, stack: TerraformStack):
        self.stack = stack
        self._deps: dict[int, tuple[TerraformResource, list[TerraformResource]]] = {}
        self._addresses: dict[int, str] = {}

    def add(self, resource: TerraformResource, deps: Iterable[TerraformResource]) -> None:
        entry = self._deps.setdefault(id(resource), (resource, []))[1]
        entry += [d for d in deps if d is not resource and all(d is not e for e in entry)]

    def address(self, resource: TerraformResource) -> str:
        """`type.logical_id`, once per resource (each jsii read is a round trip)."""
        key = id(resource)
        if key not in self._addresses:
            self._addresses[key] = f"{resource_type(resource)}.{self.stack.get_logical_id(resource)}"
        return self._addresses[key]

    def apply(self) -> None:
        for resource, deps in self._deps.values():
            # Constructs may set depends_on themselves (consumers, in practice); reading it costs a
            # jsii round trip, so other resources are assumed to have none of their own.
            existing = (resource.depends_on or []) if resource_type(resource) in CONSUMERS else []
            if existing:
                existing = Tokenization.resolve(existing, scope=self.stack, preparing=False,
                                                resolver=DefaultTokenResolver(StringConcat()))
            new = [a for a in dict.fromkeys(self.address(d) for d in deps) if a not in existing]
            if new:
                resource.add_override("depends_on", new)  # appended to the construct's own depends_on


def wire_consumers(plan: DependencyPlan, ledger: GrantLedger, project_number: str) -> None:
    """Platform: each consumer depends on every grant to the identities and agents it needs
    (except grants made on the consumer itself, or on a resource built from it, e.g. a queue
    whose target is the consumer's URL: those can only come after it), on Cloud NAT if it boots
    from the internet, and on the BigQuery tables it scans."""
    stack = plan.stack
    resources = [n for n in stack.node.find_all() if isinstance(n, TerraformResource)]
    typed = [(r, resource_type(r)) for r in resources]
    nats = [r for r, t in typed if t == "google_compute_router_nat"]
    tables = [(r, r.table_id_input) for r, t in typed if t == "google_bigquery_table"]
    texts: dict[int, str] = {}
    paths = [(r, r.node.path) for r in resources]  # each node.path read is two jsii round trips: once per resource
    resolver = DefaultTokenResolver(StringConcat())

    def text(r: TerraformResource) -> str:  # read once per resource: each to_terraform is a jsii round trip
        if id(r) not in texts:
            resolved = Tokenization.resolve(_body(r), scope=stack, preparing=False, resolver=resolver)
            texts[id(r)] = json.dumps(resolved)
        return texts[id(r)]

    def built_from(grant, address: str) -> bool:
        owned = [r for r, p in paths if r is not grant.resource and p.startswith(grant.owner_path + "/")]
        return any(f"${{{address}." in text(r) for r in owned)

    for resource, rtype in typed:
        if rtype not in CONSUMERS:
            continue
        attrs = _body(resource)
        members = set(consumer_members(rtype, attrs, project_number))
        path = next(p for r, p in paths if r is resource)
        address = plan.address(resource)
        deps = [g.resource for g in ledger.grants
                if g.member in members and not (g.owner_path and ((path + "/").startswith(g.owner_path + "/")
                                                                  or built_from(g, address)))]
        if CONSUMERS[rtype].needs_egress:
            deps += nats
        for _, table_id in scanned_tables(attrs):
            deps += [r for r, tid in tables if tid == table_id]
        plan.add(resource, deps)


def wire_service_agents(plan: DependencyPlan, ledger: GrantLedger, agents: dict[str, TerraformResource], project_number: str,
                        services: dict[str, TerraformResource]) -> None:
    """Bootstrap: each agent waits for its service's API; every grant to an agent waits for the agent."""
    from dataplatform.constructs.iam import SERVICE_AGENTS

    for service, agent in agents.items():
        plan.add(agent, [services[SERVICE_AGENTS[service].api]])
        member = f"serviceAccount:{service_agent_email(service, project_number)}"
        for grant in ledger.for_member(member):
            plan.add(grant.resource, [agent])


def wire_api_enablement(plan: DependencyPlan, services: dict[str, TerraformResource], api_dependencies) -> None:
    """Bootstrap: every resource waits for the APIs it is served by (an empty project has none on)."""
    for node in plan.stack.node.find_all():
        if not isinstance(node, TerraformResource):
            continue
        rtype = resource_type(node)
        if rtype == "google_project_service":
            continue
        plan.add(node, [services[a] for a in api_dependencies(rtype) if a in services])


@jsii.implements(IAspect)
class WireDependencies:
    """Runs `wire` once, at synth, when cdktn visits the leaf construct it is attached to."""

    def __init__(self, wire: Callable[[DependencyPlan], None]):
        self._wire = wire
        self._done = False

    def visit(self, node: IConstruct) -> None:
        if self._done:
            return
        self._done = True
        plan = DependencyPlan(TerraformStack.of(node))
        self._wire(plan)
        plan.apply()
