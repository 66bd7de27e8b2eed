"""Apply order on an empty project: what each resource must wait for, as `depends_on`.

Terraform orders only by references. A function references its service account's *email* (a
string), not the grants that let that account work, so Terraform creates the function and the
grants at once and the function's first deploy (or first event) races them. The same goes for
Composer and its account's roles, a cluster and its bucket grants, a VM whose startup script
needs Cloud NAT, a data scan and the table it reads. On an empty project the bootstrap stack's
resources likewise race the enablement of their APIs.

A `DependencyPlan` is made once per stack at synth, on the cdk.tf.json cdktn wrote (EnvironmentStack
hands it to the guardrails as their `prepare`): it adds those `depends_on` to that document, in
Python, which the rules then check and which is written back. tests/test_ordering.py checks the
result on the synthesized graph of every environment.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from cdktn import TerraformResource

from dataplatform import construct_tree, tfjson
from dataplatform.constructs.iam import GrantLedger, service_agent_email
from dataplatform.guardrails.rule import get


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
    event = str(get(attrs, "event_trigger.event_type") or "")
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


def identity_emails(rtype: str, attrs: dict) -> list[str]:
    """Service account emails a consumer runs as (read from its final attributes)."""
    found = []
    for path in CONSUMERS[rtype].identity_paths if rtype in CONSUMERS else ():
        value = get(attrs, path)
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


@dataclass
class Entry:
    """One resource of the stack's Terraform JSON: its address, construct path and body (the dict in the document)."""

    type: str
    logical_id: str
    path: str
    body: dict[str, Any]
    deps: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"{self.type}.{self.logical_id}"


class DependencyPlan:
    """`depends_on` to add, collected per resource and written once. Rendered as plain
    `type.logical_id` addresses, the only form Terraform accepts in depends_on; entries the
    resource has already (its construct's own, or an override) are kept.

    Built on the stack's Terraform JSON (`doc`, as cdktn wrote it); `apply` appends each
    resource's new entries to its body in `doc`, which then holds what cdk.tf.json will. A
    construct is found in it by its path (dataplatform/construct_tree.py: no jsii read)."""

    def __init__(self, doc: dict):
        self.doc = doc
        self.entries = [Entry(*found) for found in tfjson.bodies(doc)]
        self._by_path = {e.path: e for e in self.entries}

    def entry(self, resource: TerraformResource) -> Entry:
        """The entry of a resource construct of this stack (KeyError if the JSON does not hold it)."""
        return self._by_path[construct_tree.path(resource)]

    def of_type(self, rtype: str) -> list[Entry]:
        return [e for e in self.entries if e.type == rtype]

    def add(self, resource: TerraformResource | Entry, deps: Iterable[TerraformResource | Entry]) -> None:
        entry = resource if isinstance(resource, Entry) else self.entry(resource)
        for dep in deps:
            address = (dep if isinstance(dep, Entry) else self.entry(dep)).address
            if address != entry.address and address not in entry.deps:
                entry.deps.append(address)

    def apply(self) -> None:
        for e in self.entries:
            existing = e.body.get("depends_on") or []
            own = {a[2:-1] if a.startswith("${") and a.endswith("}") else a for a in existing}  # "${type.id}" or "type.id"
            new = [a for a in e.deps if a not in own]
            if new:
                e.body["depends_on"] = [*existing, *new]


def wire_consumers(plan: DependencyPlan, ledger: GrantLedger, project_number: str) -> None:
    """Platform: each consumer depends on every grant to the identities and agents it needs
    (except grants made on the consumer itself, or on a resource built from it, e.g. a queue
    whose target is the consumer's URL: those can only come after it), on Cloud NAT if it boots
    from the internet, and on the BigQuery tables it scans."""
    nats = plan.of_type("google_compute_router_nat")
    tables = [(e, e.body.get("table_id")) for e in plan.of_type("google_bigquery_table")]
    texts: dict[str, str] = {}
    under: dict[str, list[Entry]] = {}

    def text(e: Entry) -> str:
        if e.address not in texts:
            texts[e.address] = json.dumps(e.body)
        return texts[e.address]

    def owned_by(owner: str) -> list[Entry]:
        """Resources below a construct, found once per construct (not once per grant and consumer)."""
        if owner not in under:
            under[owner] = [e for e in plan.entries if e.path.startswith(owner + "/")]
        return under[owner]

    def owner_path(grant) -> str | None:
        """The construct a grant was made on: the grant's parent (grants are made as its children)."""
        return plan.entry(grant.resource).path.rsplit("/", 1)[0] if grant.on_owner else None

    def built_from(grant, owner: str, address: str) -> bool:
        made = plan.entry(grant.resource)
        return any(f"${{{address}." in text(e) for e in owned_by(owner) if e is not made)

    for consumer in plan.entries:
        if consumer.type not in CONSUMERS:
            continue
        attrs = consumer.body
        members = set(consumer_members(consumer.type, attrs, project_number))
        deps = []
        for g in ledger.grants:
            if g.member not in members:
                continue
            owner = owner_path(g)
            if owner and ((consumer.path + "/").startswith(owner + "/") or built_from(g, owner, consumer.address)):
                continue
            deps.append(g.resource)
        if CONSUMERS[consumer.type].needs_egress:
            deps += nats
        for _, table_id in scanned_tables(attrs):
            deps += [e for e, tid in tables if tid == table_id]
        plan.add(consumer, deps)


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
    for e in plan.entries:
        if e.type == "google_project_service":
            continue
        plan.add(e, [services[a] for a in api_dependencies(e.type) if a in services])
