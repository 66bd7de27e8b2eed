"""Construct tier: each construct on its own, in a throwaway stack, asserting its properties."""

from __future__ import annotations

import json

import pytest
from cdktn import Aspects, TerraformStack
from cdktn_provider_google.monitoring_notification_channel import MonitoringNotificationChannel
from cdktn_provider_google.storage_bucket import StorageBucket

from dataplatform import tfjson
from dataplatform.config import Pipeline, Profile
from dataplatform.constructs.github_ci import GithubCiIdentities, GithubCiSettings
from dataplatform.constructs.iam import Principal, grant_project_roles
from dataplatform.constructs.lake_bucket import BucketKind, LakeBucket, LakeBucketSettings
from dataplatform.constructs.network import IAP_RANGE, Network, NetworkSettings
from dataplatform.constructs.project_apis import REQUIRED_APIS, ProjectApis, ProjectApisSettings, api_for
from dataplatform.constructs.secret import Secret, SecretSettings
from dataplatform.constructs.warehouse import Warehouse, WarehouseSettings
from dataplatform.labels import StampLabels
from dataplatform.naming import Namer
from tests.support import environment_names, new_stack, of_type, only, synth

NAMER = Namer("acme", "test")
ALICE = Principal("alice", "serviceAccount:alice@p.iam.gserviceaccount.com")


def bucket(kind: BucketKind, folders=()) -> tuple[TerraformStack, LakeBucket]:
    stack = new_stack()
    lake = LakeBucket(stack, "b", LakeBucketSettings(name="acme-test-b", location="europe-west1", kind=kind, folders=folders))
    return stack, lake


class TestLakeBucket:
    def test_a_binding_under_a_condition_carries_it_and_its_own_id(self):
        """bind(condition=...) writes the condition block on the member, and names the member after the
        condition's title, so the same role for the same principal can be granted with and without one."""
        from dataplatform.constructs.iam import IamCondition

        stack, lake = bucket(BucketKind.DATA)
        until = IamCondition("until-2027", 'request.time < timestamp("2027-01-01T00:00:00Z")', "a migration window")
        lake.bind("roles/storage.objectViewer", ALICE, condition=until)
        lake.bind("roles/storage.objectViewer", ALICE)
        lake.bind("roles/storage.objectAdmin", ALICE, condition=IamCondition("prefix", 'resource.name.startsWith("x")'))
        members = {key.rsplit("_", 1)[0]: (m["role"], m.get("condition"))  # the logical id without its hash
                   for key, m in synth(stack)["resource"]["google_storage_bucket_iam_member"].items()}
        assert members == {
            "b_iam-storage-objectviewer-alice-until-2027": ("roles/storage.objectViewer", {
                "title": "until-2027", "expression": 'request.time < timestamp("2027-01-01T00:00:00Z")', "description": "a migration window"}),
            "b_iam-storage-objectviewer-alice": ("roles/storage.objectViewer", None),
            "b_iam-storage-objectadmin-alice-prefix": ("roles/storage.objectAdmin", {
                "title": "prefix", "expression": 'resource.name.startsWith("x")'}),
        }
        with pytest.raises(ValueError, match="roles/editor"):
            lake.bind("roles/editor", ALICE, condition=until)  # a basic role is refused, condition or not

    def test_data_bucket_is_private_versioned_tiered_and_kept(self):
        stack, _ = bucket(BucketKind.DATA)
        b = only(synth(stack), "google_storage_bucket")
        assert b["uniform_bucket_level_access"] is True
        assert b["public_access_prevention"] == "enforced"
        assert b["force_destroy"] is False
        assert b["versioning"] == {"enabled": True}
        assert b["lifecycle"]["prevent_destroy"] is True
        assert b["soft_delete_policy"]["retention_duration_seconds"] == 7 * 86400
        actions = [(r["action"]["type"], r["action"].get("storage_class"), r["condition"]) for r in b["lifecycle_rule"]]
        assert ("SetStorageClass", "NEARLINE", {"age": 90, "matches_storage_class": ["STANDARD"]}) in actions
        assert ("SetStorageClass", "COLDLINE", {"age": 365, "matches_storage_class": ["STANDARD", "NEARLINE"]}) in actions
        assert ("Delete", None, {"days_since_noncurrent_time": 30, "with_state": "ARCHIVED"}) in actions

    def test_temp_bucket_expires_objects_and_is_not_versioned(self):
        stack, _ = bucket(BucketKind.TEMP)
        b = only(synth(stack), "google_storage_bucket")
        assert b["versioning"] == {"enabled": False}
        assert b["lifecycle"]["prevent_destroy"] is False
        assert {"action": {"type": "Delete"}, "condition": {"age": 7}} in b["lifecycle_rule"]
        assert not any(r["action"]["type"] == "SetStorageClass" for r in b["lifecycle_rule"])

    def test_control_bucket_is_never_tiered(self):
        stack, _ = bucket(BucketKind.CONTROL)
        b = only(synth(stack), "google_storage_bucket")
        assert b["lifecycle"]["prevent_destroy"] is True
        assert not any(r["action"]["type"] == "SetStorageClass" for r in b["lifecycle_rule"])

    def test_create_in_folder_is_scoped_to_the_managed_folder(self):
        stack, lake = bucket(BucketKind.DATA, folders=("orders", "customers"))
        lake.grant_create_in("orders", ALICE)
        out = synth(stack)
        folders = of_type(out, "google_storage_managed_folder")
        assert sorted(f["name"] for f in folders.values()) == ["customers/", "orders/"]
        member = only(out, "google_storage_managed_folder_iam_member")
        assert member["role"] == "roles/storage.objectCreator"
        assert member["member"] == ALICE.member
        assert "folder-orders" in member["managed_folder"]
        assert not of_type(out, "google_storage_bucket_iam_member"), "no bucket-wide grant"

    def test_unknown_folder_is_refused(self):
        _, lake = bucket(BucketKind.DATA, folders=("orders",))
        with pytest.raises(KeyError, match="no managed folder 'payments'"):
            lake.grant_create_in("payments", ALICE)

    @pytest.mark.parametrize("grant,role", [("grant_read", "roles/storage.objectViewer"), ("grant_create", "roles/storage.objectCreator"),
                                            ("grant_read_write", "roles/storage.objectUser")])
    def test_grants_are_bucket_scoped(self, grant, role):
        stack, lake = bucket(BucketKind.DATA)
        getattr(lake, grant)(ALICE)
        member = only(synth(stack), "google_storage_bucket_iam_member")
        assert member["role"] == role and member["member"] == ALICE.member
        assert member["bucket"].startswith("${google_storage_bucket.")

    def test_basic_roles_are_refused(self):
        _, lake = bucket(BucketKind.DATA)
        with pytest.raises(ValueError, match="basic role roles/editor"):
            lake.bind("roles/editor", ALICE)

    def test_project_roles_need_a_reason(self):
        stack = new_stack()
        with pytest.raises(ValueError, match="needs a reason"):
            grant_project_roles(stack, "p", ALICE, {"roles/dataflow.worker": ""})


ETL_SA = "acme-test-etl-worker@acme-test.iam.gserviceaccount.com"
DATAPROC_SA = "acme-test-dataproc@acme-test.iam.gserviceaccount.com"
AIRFLOW_SA = "acme-test-orchestrator@acme-test.iam.gserviceaccount.com"


class TestNetwork:
    @pytest.fixture(scope="class")
    def out(self):
        stack = new_stack()
        Network(stack, "net", NetworkSettings(namer=NAMER, region="europe-west1", subnet_cidr="10.1.0.0/20", flow_log_sampling=0.5,
                                              dataflow_identity=ETL_SA, dataproc_identity=DATAPROC_SA, iap_identities=(AIRFLOW_SA,)))
        return synth(stack)

    def test_vpc_is_custom_mode(self, out):
        assert only(out, "google_compute_network")["auto_create_subnetworks"] is False

    def test_subnet_has_private_google_access_and_flow_logs(self, out):
        subnet = only(out, "google_compute_subnetwork")
        assert subnet["private_ip_google_access"] is True
        assert subnet["log_config"] == {"aggregation_interval": "INTERVAL_5_MIN", "flow_sampling": 0.5, "metadata": "EXCLUDE_ALL_METADATA"}

    def test_flow_log_volume_follows_config(self):
        stack = new_stack()
        Network(stack, "net", NetworkSettings(namer=NAMER, region="europe-west1", subnet_cidr="10.1.0.0/20", flow_log_sampling=0.25,
                                              dataflow_identity=ETL_SA, dataproc_identity=DATAPROC_SA,
                                              flow_log_interval="INTERVAL_1_MIN", flow_log_metadata="INCLUDE_ALL_METADATA"))
        out = synth(stack)
        assert only(out, "google_compute_subnetwork")["log_config"] == {
            "aggregation_interval": "INTERVAL_1_MIN", "flow_sampling": 0.25, "metadata": "INCLUDE_ALL_METADATA"}
        assert not any(r.get("source_ranges") == [IAP_RANGE] for r in of_type(out, "google_compute_firewall").values()), \
            "no IAP rule without a VM to reach"

    def test_nat_covers_the_subnet_and_logs_errors(self, out):
        nat = only(out, "google_compute_router_nat")
        assert nat["source_subnetwork_ip_ranges_to_nat"] == "LIST_OF_SUBNETWORKS"
        assert nat["log_config"] == {"enable": True, "filter": "ERRORS_ONLY"}

    def test_nothing_is_allowed_from_the_internet(self, out):
        for path, rule in of_type(out, "google_compute_firewall").items():
            assert "log_config" in rule, path
            if rule.get("allow"):
                assert "0.0.0.0/0" not in rule.get("source_ranges", []), path
                assert rule.get("target_service_accounts"), f"{path}: allow rules target service accounts"
                assert not rule.get("target_tags") and not rule.get("source_tags"), f"{path}: never network tags"

    def test_workers_reach_only_their_own_kind(self, out):
        rules = {r["name"].removeprefix("acme-test-fw-"): r for r in of_type(out, "google_compute_firewall").values()}
        assert rules["allow-dataflow-workers"]["source_service_accounts"] == [ETL_SA] == rules["allow-dataflow-workers"]["target_service_accounts"]
        assert rules["allow-dataproc-internal"]["source_service_accounts"] == [DATAPROC_SA] == rules["allow-dataproc-internal"]["target_service_accounts"]

    def test_ssh_only_from_iap_to_the_airflow_vm_account(self, out):
        ssh = [r for r in of_type(out, "google_compute_firewall").values()
               if any("22" in (a.get("ports") or []) for a in r.get("allow", []))]
        assert len(ssh) == 1
        assert ssh[0]["source_ranges"] == [IAP_RANGE] and ssh[0]["target_service_accounts"] == [AIRFLOW_SA]

    def test_low_priority_logged_deny_all(self, out):
        deny = [r for r in of_type(out, "google_compute_firewall").values() if r.get("deny")]
        assert len(deny) == 1 and deny[0]["priority"] == 65534 and deny[0]["deny"] == [{"protocol": "all"}]


class TestWarehouse:
    def test_dataset_and_tables_survive_destroy(self):
        stack = new_stack()
        pipeline = Pipeline.model_validate({"name": "orders", "trigger": "on_arrival", "schema": [
            {"name": "id", "type": "STRING", "mode": "REQUIRED"}, {"name": "n", "type": "INTEGER", "min": 0}]})
        wh = Warehouse(stack, "wh", WarehouseSettings(dataset_id="acme_test_wh", location="EU", pipelines=(pipeline,)))
        wh.grant_write(ALICE)
        out = synth(stack)
        dataset = only(out, "google_bigquery_dataset")
        assert dataset["delete_contents_on_destroy"] is False and dataset["lifecycle"]["prevent_destroy"] is True
        table = only(out, "google_bigquery_table")
        assert table["deletion_protection"] is True
        assert table["time_partitioning"] == {"type": "DAY"}, "no partition column: ingestion time"
        assert "clustering" not in table
        assert [c["name"] for c in json.loads(table["schema"])] == ["id", "n"]
        assert json.loads(table["schema"])[0]["mode"] == "REQUIRED"
        assert only(out, "google_bigquery_dataset_iam_member")["role"] == "roles/bigquery.dataEditor"
        assert wh.table_ref("p", "orders") == "p:acme_test_wh.orders"


    def test_event_time_partitions_and_clusters_from_config(self):
        stack = new_stack()
        pipeline = Pipeline.model_validate({"name": "orders", "trigger": "on_arrival", "partition_by": "at", "cluster_by": ["id", "n"],
                                            "partition_granularity": "HOUR", "schema": [
            {"name": "id", "type": "STRING"}, {"name": "n", "type": "INTEGER"}, {"name": "at", "type": "TIMESTAMP"}]})
        Warehouse(stack, "wh", WarehouseSettings(dataset_id="acme_test_wh", location="EU", pipelines=(pipeline,)))
        table = only(synth(stack), "google_bigquery_table")
        assert table["time_partitioning"] == {"type": "HOUR", "field": "at"}
        assert table["clustering"] == ["id", "n"]


class TestSecret:
    def test_secret_has_no_value_stays_in_region_and_has_one_accessor(self):
        stack = new_stack()
        Secret(stack, "s", SecretSettings(secret_id="acme-test-key", region="europe-west1")).grant_access(ALICE)
        out = synth(stack)
        assert "google_secret_manager_secret_version" not in out["resource"]
        secret = only(out, "google_secret_manager_secret")
        assert secret["deletion_protection"] is True
        assert secret["replication"] == {"user_managed": {"replicas": [{"location": "europe-west1"}]}}
        assert only(out, "google_secret_manager_secret_iam_member")["role"] == "roles/secretmanager.secretAccessor"

    def test_platform_side_reference_refuses_grants(self):
        from dataplatform.constructs.secret import SecretRef

        ref = SecretRef("acme-test", "acme-test-key")
        assert ref.version(3) == "projects/acme-test/secrets/acme-test-key/versions/3"
        with pytest.raises(RuntimeError, match="decided by the bootstrap stack"):
            ref.grant_access(ALICE)


class TestGithubCi:
    @pytest.fixture(scope="class")
    def out(self):
        stack = new_stack()
        state = LakeBucket(stack, "state", LakeBucketSettings(name="acme-test-tfstate", location="eu", kind=BucketKind.STATE))
        GithubCiIdentities(stack, "ci", GithubCiSettings(
            namer=NAMER, project="acme-test", billing_account="000000-000000-000000", repository="acme/repo",
            repository_id=111, owner_id=222, deploy_branch="main", github_environment="test", state_bucket=state,
            plan_readable_bucket_prefixes=("acme-test-artifacts-1", "europe-west1-acme-test-composer-")))
        return synth(stack)

    def test_provider_pins_the_repository_and_owner_by_id(self, out):
        provider = only(out, "google_iam_workload_identity_pool_provider")
        assert provider["attribute_condition"] == "assertion.repository_id == '111' && assertion.repository_owner_id == '222'"
        assert provider["oidc"]["issuer_uri"] == "https://token.actions.githubusercontent.com"

    def test_deployer_only_from_the_deploy_workflow_in_its_environment_plan_from_the_repo(self, out):
        bindings = {b["service_account_id"].split(".")[1]: b["member"] for b in of_type(out, "google_service_account_iam_member").values()}
        deployer = next(m for k, m in bindings.items() if "deployer" in k)
        plan = next(m for k, m in bindings.items() if "plan" in k)
        assert deployer.endswith("/attribute.deploy/acme/repo/.github/workflows/deploy-env.yml@refs/heads/main:environment:test")
        assert plan.endswith("/attribute.repository_id/111")

    def test_deployer_grants_only_listed_roles_and_reads_no_secret(self, out):
        from dataplatform.constructs.github_ci import DEPLOYER_GRANTABLE_ROLES

        members = of_type(out, "google_project_iam_member")
        iam_admin = [m for m in members.values() if m["role"] == "roles/resourcemanager.projectIamAdmin"]
        assert len(iam_admin) == 1
        expression = iam_admin[0]["condition"]["expression"]
        assert expression.startswith("api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly([")
        assert all(f"'{r}'" in expression for r in DEPLOYER_GRANTABLE_ROLES)
        assert "roles/owner" not in expression and "roles/iam.serviceAccountUser" not in expression
        roles = {m["role"] for m in members.values()}
        assert not roles & {"roles/secretmanager.admin", "roles/iam.serviceAccountAdmin", "roles/serviceusage.serviceUsageAdmin"}

    def test_plan_reads_managed_objects_only(self, out):
        viewer = [m for m in of_type(out, "google_project_iam_member").values() if m["role"] == "roles/storage.objectViewer"]
        assert len(viewer) == 1
        assert viewer[0]["condition"]["expression"] == ("resource.name.startsWith('projects/_/buckets/acme-test-artifacts-1') || "
                                                         "resource.name.startsWith('projects/_/buckets/europe-west1-acme-test-composer-')")
        assert not any(m["role"] == "roles/composer.user" for m in of_type(out, "google_project_iam_member").values())

    def test_no_basic_roles_and_no_keys(self, out):
        roles = [m["role"] for m in of_type(out, "google_project_iam_member").values()]
        assert roles and not {"roles/owner", "roles/editor", "roles/viewer"} & set(roles)
        assert "google_service_account_key" not in out["resource"]

    def test_plan_identity_can_only_read_state(self, out):
        state_roles = {m["member"].split("}")[0]: m["role"] for m in of_type(out, "google_storage_bucket_iam_member").values()}
        assert sorted(state_roles.values()) == ["roles/storage.objectUser", "roles/storage.objectViewer"]


class TestProjectApis:
    def test_workload_identity_api_is_enabled_for_service_agents(self):
        assert "workloadidentity.googleapis.com" in REQUIRED_APIS

    def test_apis_are_never_disabled_on_destroy(self):
        stack = new_stack()
        ProjectApis(stack, "apis", ProjectApisSettings(project="acme-test"))
        services = of_type(synth(stack), "google_project_service")
        assert len(services) == len(REQUIRED_APIS)
        assert all(s["disable_on_destroy"] is False for s in services.values())

    def test_api_lookup_prefers_the_longest_prefix(self):
        assert api_for("google_cloudbuildv2_connection") == "cloudbuild.googleapis.com"
        assert api_for("google_storage_bucket") == "storage.googleapis.com"
        assert api_for("google_unknown_thing") is None


class TestLabels:
    def test_labels_are_stamped_and_own_labels_win(self):
        stack = new_stack()
        Aspects.of(stack).add(StampLabels({"env": "test", "owner": "team"}))
        StorageBucket(stack, "plain", name="acme-plain", location="EU")
        StorageBucket(stack, "own", name="acme-own", location="EU", labels={"owner": "other"})
        MonitoringNotificationChannel(stack, "mail", type="email", labels={"email_address": "a@b.co"})
        out = synth(stack)
        buckets = {b["name"]: b["labels"] for b in of_type(out, "google_storage_bucket").values()}
        assert buckets["acme-plain"] == {"env": "test", "owner": "team"}
        assert buckets["acme-own"] == {"env": "test", "owner": "other"}
        channel = only(out, "google_monitoring_notification_channel")
        assert channel["labels"] == {"email_address": "a@b.co"}, "channel address untouched"
        assert channel["user_labels"] == {"env": "test", "owner": "team"}


# ---------------------------------------------------------------- grants on tables and folders

@pytest.mark.parametrize("env_name", environment_names())
def test_table_grants_reference_their_table(stacks, environments, env_name):
    """A grant on a BigQuery table names the table by reference, so Terraform creates it after the
    table (a grant on a table that does not exist yet is a 404 on a fresh project)."""
    env = environments[env_name]
    members = [r for name in (f"{env_name}-bootstrap", f"{env_name}-platform") for r in tfjson.resources(stacks[name])
               if r.type == "google_bigquery_table_iam_member"]
    # One read grant per (source table, ML identity): runner always; pipeline and workbench when managed.
    sources = {m.pipeline for m in env.ml.models} if env.ml is not None else set()
    assert len(members) == len(sources) * (3 if env.profile is Profile.managed else 1)
    tables = {r.logical_id: r.body for r in tfjson.resources(stacks[f"{env_name}-platform"]) if r.type == "google_bigquery_table"}
    for member in members:
        for attr in ("dataset_id", "table_id"):
            value = member.body[attr]
            assert value.startswith("${google_bigquery_table."), (member.path, attr, value)
            logical_id = value.removeprefix("${google_bigquery_table.").split(".")[0]
            assert logical_id in tables, (member.path, value)
        assert tables[logical_id]["table_id"] in sources, member.path


def test_folder_grants_refuse_basic_roles_and_are_recorded_like_every_grant():
    """Managed-folder grants go through the one IAM helper: basic roles refused, the member in the ledger."""
    from dataplatform.constructs.iam import GrantLedger

    stack = new_stack()
    stack.grant_ledger = ledger = GrantLedger()
    lake = LakeBucket(stack, "b", LakeBucketSettings(name="acme-test-b", location="europe-west1", kind=BucketKind.DATA,
                                                     folders=("orders",)))
    alice = Principal("alice", "serviceAccount:alice@p.iam.gserviceaccount.com")
    with pytest.raises(ValueError, match="basic role roles/owner is never granted"):
        lake._grant_in("orders", "roles/owner", alice)
    member = lake.grant_read_write_in("orders", alice)
    assert member is not None
    assert [(g.member, g.resource, g.on_owner) for g in ledger.grants] == [(alice.member, member, True)]
