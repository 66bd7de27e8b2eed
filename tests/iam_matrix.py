"""Who holds which role on what, read from the synthesized JSON of an environment's two stacks.

`actual(bootstrap, platform, env)` -> {identity: {resource: {role, ...}}}, with stable names:
identities are workload keys (`etl-worker`), `ci-plan`, `ci-deployer`, `<service>-agent`,
`operators`, `github-repo`, `github-deploy-job`; resources are `project`, `project?<condition>`,
`bucket:<key>`, `folder:<bucket>/<folder>`, `dataset:<key>`, `table:<id>`, `topic:<key>`,
`workbench:<key>`, `sa:<key>`, `secret:<key>`,
`repository:<key>`, `run:<key>`, `queue:<key>`, `instance:<key>`, `billing-account`. Custom roles read
`custom:<component>`.
"""

from __future__ import annotations

import re
from collections import defaultdict

from dataplatform import tfjson
from dataplatform.config import Environment
from dataplatform.constructs.iam import SERVICE_AGENTS

_REF = re.compile(r"\$\{(google_[a-z0-9_]+)\.([A-Za-z0-9_-]+)\.[a-z_]+\}")


def _index(stack: dict) -> dict[tuple[str, str], tfjson.SynthesizedResource]:
    return {(r.type, r.logical_id): r for r in tfjson.resources(stack)}


def _referenced(value: str, index) -> tfjson.SynthesizedResource | None:
    match = _REF.search(value or "")
    return index.get((match.group(1), match.group(2))) if match else None


def _account_key(account_id: str, env: Environment) -> str:
    key = account_id.removeprefix(f"{env.namer.base}-")
    return {"ci-deploy": "ci-deployer"}.get(key, key)


def identity(member: str, index, env: Environment) -> str:
    kind, _, who = member.partition(":")
    if kind == "group" and who == env.operators_group:
        return "operators"
    if kind == "group" and env.ml is not None and who == env.ml.data_scientists_group:
        return "data-scientists"
    sink = _referenced(member, index)
    if sink is not None and sink.type == "google_logging_project_sink":
        return f"log-sink:{_component(sink.relative_path)}"
    if kind == "principalSet":
        return "github-deploy-job" if "/attribute.deploy/" in who else "github-repo" if "/attribute.repository_id/" in who else who
    if kind == "serviceAccount":
        account = _referenced(who, index)
        if account is not None:
            return _account_key(account.body["account_id"], env)
        if who.startswith("service-"):
            domain = who.split("@", 1)[1]
            return next(f"{s}-agent" for s, spec in SERVICE_AGENTS.items() if spec.domain == domain)
        if who.endswith(f"@{env.project_id}.iam.gserviceaccount.com"):
            return _account_key(who.split("@", 1)[0], env)
    return member


def _component(path: str) -> str:
    """landing/bucket -> landing; mail-api-key/secret -> mail-api-key."""
    return path.split("/")[0]


def resource_key(r: tfjson.SynthesizedResource, index, env: Environment) -> str:
    body = r.body
    if r.type == "google_project_iam_member":
        condition = body.get("condition")
        return f"project?{condition['title']}" if condition else "project"
    if r.type == "google_billing_account_iam_member":
        return "billing-account"
    if r.type == "google_bigquery_dataset_iam_member":
        dataset = _referenced(body["dataset_id"], index)
        return f"dataset:{_component(dataset.relative_path) if dataset else body['dataset_id']}"
    if r.type == "google_bigquery_table_iam_member":
        table = _referenced(body["table_id"], index)
        return f"table:{table.body['table_id'] if table else body['table_id']}"
    if r.type == "google_storage_managed_folder_iam_member":
        folder = _referenced(body["managed_folder"], index)
        return f"folder:{folder.relative_path.split('/')[0]}/{folder.body['name'].rstrip('/')}"
    target_attr = {
        "google_storage_bucket_iam_member": ("bucket", "bucket"),
        "google_service_account_iam_member": ("service_account_id", "sa"),
        "google_secret_manager_secret_iam_member": ("secret_id", "secret"),
        "google_artifact_registry_repository_iam_member": ("repository", "repository"),
        "google_cloud_run_v2_service_iam_member": ("name", "run"),
        "google_compute_instance_iam_member": ("instance_name", "instance"),
        "google_iap_tunnel_instance_iam_member": ("instance", "instance"),
        "google_cloud_tasks_queue_iam_member": ("name", "queue"),
        "google_pubsub_topic_iam_member": ("topic", "topic"),
        "google_workbench_instance_iam_member": ("name", "workbench"),
    }[r.type]
    attr, prefix = target_attr
    target = _referenced(body[attr], index)
    if target is None:
        return f"{prefix}:{body[attr]}"
    if target.type == "google_service_account":
        return f"sa:{_account_key(target.body['account_id'], env)}"
    if target.type == "google_cloudfunctions2_function":
        return f"run:{_component(target.relative_path)}"
    return f"{prefix}:{_component(target.relative_path)}"


def role_key(role: str, index, env: Environment) -> str:
    custom = _referenced(role, index)
    if custom is not None:
        return f"custom:{custom.body['role_id'].removeprefix(env.namer.base.replace('-', '_') + '_')}"
    return role


def actual(*stacks: dict, env: Environment) -> dict[str, dict[str, set[str]]]:
    matrix: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for stack in stacks:
        index = _index(stack)
        for r in index.values():
            if not r.type.endswith("_iam_member"):
                continue
            who = identity(r.body["member"], index, env)
            matrix[who][resource_key(r, index, env)].add(role_key(r.body["role"], index, env))
    return {who: dict(grants) for who, grants in matrix.items()}
