"""Apply order on an empty project, checked on the synthesized graph of every environment.

The graph: a resource depends on another when it references it (`${type.name.attr}`) or lists
it in depends_on; ancestors are the transitive closure. The requirements are stated here, on
their own, from what Google documents each consumer needs:
- a consumer (function, scheduler job, Composer, Dataproc, VM, build trigger, connection, data
  scan) is created after every grant, in its stack, to the identities it runs as and to the
  service agents its service uses; grants made *on* a consumer (who may invoke the function,
  tunnel to the VM) reference it and so come after it: they are nobody's prerequisite;
- a VM or cluster that installs software at boot waits for Cloud NAT; a data scan for its table;
- the bootstrap stack (applied first) creates every workload account and every Google service
  agent the platform names, and each of its resources waits for its API to be enabled.
Environments come from environments/.
"""

from __future__ import annotations

import re

import pytest

from dataplatform import tfjson
from dataplatform.config import load_environments
from dataplatform.constructs.iam import SERVICE_AGENTS
from dataplatform.constructs.project_apis import api_for

ENVIRONMENTS = {e.name: e for e in load_environments()}
_REF = re.compile(r"\$\{(google_[a-z0-9_]+)\.([A-Za-z0-9_-]+)")
_TABLE = re.compile(r"//bigquery\.googleapis\.com/projects/[^/]+/datasets/\w+/tables/(\w+)")

# What each consumer runs as (attribute paths) and which Google agents its service relies on.
RUNS_AS = {
    "google_cloudfunctions2_function": ("service_config.service_account_email", "build_config.service_account",
                                        "event_trigger.service_account_email"),
    "google_cloud_scheduler_job": ("http_target.oauth_token.service_account_email", "http_target.oidc_token.service_account_email"),
    "google_composer_environment": ("config.node_config.service_account",),
    "google_dataproc_cluster": ("cluster_config.gce_cluster_config.service_account",),
    "google_compute_instance": ("service_account.email",),
    "google_cloudbuild_trigger": ("service_account",),
    "google_cloudbuildv2_connection": (),
    "google_dataplex_datascan": (),
}
AGENTS = {"google_composer_environment": ("composer",), "google_cloudbuildv2_connection": ("cloudbuild",),
          "google_dataplex_datascan": ("dataplex",)}
BOOTS_FROM_INTERNET = {"google_compute_instance", "google_dataproc_cluster"}


class Graph:
    def __init__(self, stack: dict):
        self.resources = {r.address: r for r in tfjson.resources(stack)}
        self.edges = {a: self._deps(r) for a, r in self.resources.items()}
        self._ancestors: dict[str, frozenset[str]] = {}

    @staticmethod
    def _deps(r: tfjson.SynthesizedResource) -> set[str]:
        body = {k: v for k, v in r.body.items() if k != "depends_on"}
        refs = {f"{t}.{n}" for t, n in _REF.findall(str(body))}
        return refs | set(r.body.get("depends_on", []))

    def ancestors(self, address: str) -> frozenset[str]:
        if address in self._ancestors:
            return self._ancestors[address]
        out: set[str] = set()
        stack = list(self.edges.get(address, ()))
        while stack:
            a = stack.pop()
            if a not in out:
                out.add(a)
                stack.extend(self.edges.get(a, ()))
        self._ancestors[address] = frozenset(out)
        return self._ancestors[address]

    def __hash__(self):
        return id(self)


def _get(body, path):
    for key in path.split("."):
        body = body[0] if isinstance(body, list) and body else body
        body = body.get(key) if isinstance(body, dict) else None
    return body


def _email(value) -> str | None:
    return value.rsplit("/", 1)[-1] if isinstance(value, str) and "@" in value else None


def requirements(graph: Graph, r: tfjson.SynthesizedResource, project_number: str) -> dict[str, str]:
    """address -> why, for everything `r` must be created after."""
    members = {f"serviceAccount:{e}" for e in (_email(_get(r.body, p)) for p in RUNS_AS[r.type]) if e}
    agents = set(AGENTS.get(r.type, ()))
    if r.type == "google_cloudfunctions2_function" and str(_get(r.body, "event_trigger.event_type")).startswith("google.cloud.storage."):
        agents.add("storage")
    members |= {f"serviceAccount:service-{project_number}@{SERVICE_AGENTS[a].domain}" for a in agents}
    consumers = {a for a, c in graph.resources.items() if c.type in RUNS_AS}
    needs = {}
    for address, other in graph.resources.items():
        on_a_consumer = consumers & graph.ancestors(address)
        if other.type.endswith("_iam_member") and other.body.get("member") in members and not on_a_consumer:
            needs[address] = f"grant of {other.body['role']} to {other.body['member']}"
        if r.type in BOOTS_FROM_INTERNET and other.type == "google_compute_router_nat":
            needs[address] = "Cloud NAT (software installed at boot)"
        if other.type == "google_bigquery_table" and other.body.get("table_id") in _TABLE.findall(str(r.body)):
            needs[address] = "the table it scans"
    return needs




@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_every_consumer_waits_for_its_grants_agents_nat_and_tables(stacks, env_name):
    graph = Graph(stacks[f"{env_name}-platform"])
    consumers = [r for r in graph.resources.values() if r.type in RUNS_AS]
    assert {r.type for r in consumers} >= {"google_cloudfunctions2_function", "google_dataproc_cluster", "google_cloudbuild_trigger",
                                           "google_cloudbuildv2_connection", "google_dataplex_datascan"}
    missing = []
    for r in consumers:
        needs = requirements(graph, r, ENVIRONMENTS[env_name].project_number)
        assert needs or r.type in ("google_cloudbuildv2_connection",), f"{r.path}: nothing found to wait for (test out of date?)"
        missing += [f"{r.path} does not wait for {graph.resources[a].path} ({why})"
                    for a, why in needs.items() if a not in graph.ancestors(r.address)]
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_the_graph_has_no_cycle(stacks, env_name):
    for suffix in ("bootstrap", "platform"):
        graph = Graph(stacks[f"{env_name}-{suffix}"])
        assert not [a for a in graph.resources if a in graph.ancestors(a)], suffix


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_bootstrap_resources_wait_for_their_api(stacks, env_name):
    graph = Graph(stacks[f"{env_name}-bootstrap"])
    services = {r.body["service"]: a for a, r in graph.resources.items() if r.type == "google_project_service"}
    missing = [f"{r.path} ({r.type}) does not wait for {api_for(r.type)}"
               for a, r in graph.resources.items()
               if r.type != "google_project_service" and api_for(r.type) and services[api_for(r.type)] not in graph.ancestors(a)]
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_grants_to_service_agents_wait_for_the_agents_creation(stacks, env_name):
    graph = Graph(stacks[f"{env_name}-bootstrap"])
    number = ENVIRONMENTS[env_name].project_number
    agents = {r.body["parent"].rsplit("/", 1)[-1]: a for a, r in graph.resources.items() if r.type == "google_workload_identity_service_agent"}
    for a, r in graph.resources.items():
        member = str(r.body.get("member", ""))
        if r.type.endswith("_iam_member") and member.startswith(f"serviceAccount:service-{number}@"):
            service = next(s for s, spec in SERVICE_AGENTS.items() if member.endswith(spec.domain))
            assert agents[SERVICE_AGENTS[service].api] in graph.ancestors(a), f"{r.path} races the creation of the {service} agent"


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_bootstrap_creates_every_account_and_agent_the_platform_names(stacks, env_name):
    env = ENVIRONMENTS[env_name]
    platform = str(stacks[f"{env_name}-platform"]["resource"])
    bootstrap = Graph(stacks[f"{env_name}-bootstrap"])
    accounts = {f"{r.body['account_id']}@{env.project_id}.iam.gserviceaccount.com" for r in bootstrap.resources.values()
                if r.type == "google_service_account"}
    named = set(re.findall(rf"[a-z0-9-]+@{re.escape(env.project_id)}\.iam\.gserviceaccount\.com", platform))
    assert named and named <= accounts, sorted(named - accounts)
    producers = {r.body["parent"].rsplit("/", 1)[-1] for r in bootstrap.resources.values() if r.type == "google_workload_identity_service_agent"}
    agents = set(re.findall(rf"service-{env.project_number}@([a-z0-9-]+\.iam\.gserviceaccount\.com)", platform))
    assert agents and {next(s.api for s in SERVICE_AGENTS.values() if s.domain == d) for d in agents} <= producers


def test_a_consumer_without_its_wiring_is_caught(stacks):
    """Remove the function's depends_on: the requirement check must report the grants it races."""
    import copy

    name = next(n for n in ENVIRONMENTS if any(p.on_arrival for p in ENVIRONMENTS[n].pipelines))
    stack = copy.deepcopy(stacks[f"{name}-platform"])
    (function,) = stack["resource"]["google_cloudfunctions2_function"].values()
    function.pop("depends_on")
    graph = Graph(stack)
    r = next(r for r in graph.resources.values() if r.type == "google_cloudfunctions2_function")
    needs = requirements(graph, r, ENVIRONMENTS[name].project_number)
    unmet = [why for a, why in needs.items() if a not in graph.ancestors(r.address)]
    assert any("roles/pubsub.publisher" in why for why in unmet), unmet  # the GCS agent's Eventarc grant
    assert any("roles/eventarc.eventReceiver" in why for why in unmet), unmet


def test_the_rules_check_the_json_that_is_written(synth_app, stacks):
    """The wiring adds depends_on to the constructs and to the one resolved document the guardrails
    check; that document is, resource by resource, the cdk.tf.json cdktn then writes."""
    from dataplatform.guardrails import results

    checked = results(synth_app)
    assert set(checked) == set(stacks)
    for name, written in stacks.items():
        seen = {r.address: (r.path, r.body, r.comments) for r in tfjson.resources(checked[name].document)}
        assert seen == {r.address: (r.path, r.body, r.comments) for r in tfjson.resources(written)}, name
        assert any("depends_on" in body for _, body, _ in seen.values()), name


def _small_stack():
    from cdktn_provider_google.project_service import ProjectService
    from cdktn_provider_google.storage_bucket import StorageBucket

    from tests.support import new_stack

    stack = new_stack()
    api = ProjectService(stack, "api", service="storage.googleapis.com")
    buckets = [StorageBucket(stack, f"b{i}", name=f"acme-b{i}", location="EU") for i in range(3)]
    return stack, api, buckets


def test_the_plan_finds_a_construct_by_its_path():
    """Every resource of the JSON is an entry (its body the document's own dict); a construct is found by
    its construct path; one the JSON lacks (a moved resource) is a KeyError."""
    from dataplatform.ordering import DependencyPlan

    stack, api, buckets = _small_stack()
    doc = stack.to_terraform()
    del doc["resource"]["google_storage_bucket"][stack.get_logical_id(buckets[1])]
    plan = DependencyPlan(doc)
    assert sorted(e.path for e in plan.entries) == ["test/api", "test/b0", "test/b2"]
    found = plan.entry(buckets[2])
    assert (found.address, found.path) == (f"google_storage_bucket.{stack.get_logical_id(buckets[2])}", "test/b2")
    assert found.body is doc["resource"]["google_storage_bucket"][found.logical_id]
    assert plan.entry(api).type == "google_project_service"
    with pytest.raises(KeyError):
        plan.entry(buckets[1])


def test_the_plan_appends_to_the_depends_on_a_resource_has_already():
    """Depends_on a construct set itself (as an attribute or as an override) stays in the document;
    the plan appends only the addresses that are new, as plain `type.id`."""
    from dataplatform.ordering import DependencyPlan

    stack, api, buckets = _small_stack()
    buckets[0].depends_on = [buckets[2].fqn]
    buckets[1].add_override("depends_on", ["google_storage_bucket.elsewhere"])
    plan = DependencyPlan(stack.to_terraform())
    plan.add(buckets[0], [buckets[2], api])  # b2: already its own depends_on, not repeated
    for b in buckets[1:]:
        plan.add(b, [api, api])  # twice: written once
    plan.apply()
    deps = {r.path: r.body.get("depends_on") for r in tfjson.resources(plan.doc)}
    api_address = f"google_project_service.{stack.get_logical_id(api)}"
    assert deps["test/b0"] == [f"${{google_storage_bucket.{stack.get_logical_id(buckets[2])}}}", api_address]
    assert deps["test/b1"] == ["google_storage_bucket.elsewhere", api_address]
    assert deps["test/b2"] == [api_address]
    assert deps["test/api"] is None


def test_the_terraform_type_of_every_resource_class_comes_from_its_module(synth_app):
    """resource_types reads a provider class's type from its module name instead of asking jsii."""
    from cdktn import TerraformResource, TerraformStack

    from dataplatform.resource_types import resource_type

    classes = {type(n): n for s in synth_app.node.children if isinstance(s, TerraformStack)
               for n in s.node.find_all() if isinstance(n, TerraformResource)}
    assert len(classes) > 40
    assert {c: resource_type(n) for c, n in classes.items()} == {c: n.terraform_resource_type for c, n in classes.items()}
