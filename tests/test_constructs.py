"""Construct tier: each construct on its own, in a throwaway stack, asserting its properties."""

from __future__ import annotations

import json

import pytest
from cdktn import Aspects, TerraformStack
from cdktn_provider_google.monitoring_notification_channel import MonitoringNotificationChannel
from cdktn_provider_google.storage_bucket import StorageBucket

from dataplatform.config import Pipeline
from dataplatform.constructs.github_ci import GithubCiIdentities, GithubCiSettings
from dataplatform.constructs.iam import Principal, grant_project_roles
from dataplatform.constructs.lake_bucket import BucketKind, LakeBucket, LakeBucketSettings
from dataplatform.constructs.network import IAP_RANGE, Network, NetworkSettings
from dataplatform.constructs.project_apis import REQUIRED_APIS, ProjectApis, ProjectApisSettings, api_for
from dataplatform.constructs.secret import Secret, SecretSettings
from dataplatform.constructs.warehouse import Warehouse, WarehouseSettings
from dataplatform.labels import StampLabels
from dataplatform.naming import Namer
from tests.support import new_stack, of_type, only, synth

NAMER = Namer("acme", "test")
ALICE = Principal("alice", "serviceAccount:alice@p.iam.gserviceaccount.com")


def bucket(kind: BucketKind, folders=()) -> tuple[TerraformStack, LakeBucket]:
    stack = new_stack()
    lake = LakeBucket(stack, "b", LakeBucketSettings(name="acme-test-b", location="europe-west1", kind=kind, purpose="test", folders=folders))
    return stack, lake


class TestLakeBucket:
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


class TestNetwork:
    @pytest.fixture(scope="class")
    def out(self):
        stack = new_stack()
        Network(stack, "net", NetworkSettings(namer=NAMER, region="europe-west1", subnet_cidr="10.1.0.0/20", flow_log_sampling=0.5))
        return synth(stack)

    def test_vpc_is_custom_mode(self, out):
        assert only(out, "google_compute_network")["auto_create_subnetworks"] is False

    def test_subnet_has_private_google_access_and_flow_logs(self, out):
        subnet = only(out, "google_compute_subnetwork")
        assert subnet["private_ip_google_access"] is True
        assert subnet["log_config"]["flow_sampling"] == 0.5

    def test_nat_covers_the_subnet_and_logs_errors(self, out):
        nat = only(out, "google_compute_router_nat")
        assert nat["source_subnetwork_ip_ranges_to_nat"] == "LIST_OF_SUBNETWORKS"
        assert nat["log_config"] == {"enable": True, "filter": "ERRORS_ONLY"}

    def test_nothing_is_allowed_from_the_internet(self, out):
        for path, rule in of_type(out, "google_compute_firewall").items():
            assert "log_config" in rule, path
            if rule.get("allow"):
                assert "0.0.0.0/0" not in rule.get("source_ranges", []), path
                assert rule.get("target_tags"), f"{path}: allow rules must target tags"

    def test_ssh_only_from_iap_to_the_airflow_tag(self, out):
        ssh = [r for r in of_type(out, "google_compute_firewall").values()
               if any("22" in (a.get("ports") or []) for a in r.get("allow", []))]
        assert len(ssh) == 1
        assert ssh[0]["source_ranges"] == [IAP_RANGE] and ssh[0]["target_tags"] == ["airflow"]

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
        assert table["time_partitioning"] == {"type": "DAY"}
        assert [c["name"] for c in json.loads(table["schema"])] == ["id", "n"]
        assert json.loads(table["schema"])[0]["mode"] == "REQUIRED"
        assert only(out, "google_bigquery_dataset_iam_member")["role"] == "roles/bigquery.dataEditor"
        assert wh.table_ref("p", "orders") == "p:acme_test_wh.orders"


class TestSecret:
    def test_secret_has_no_value_and_one_accessor(self):
        stack = new_stack()
        Secret(stack, "s", SecretSettings(secret_id="acme-test-key", purpose="test")).grant_access(ALICE)
        out = synth(stack)
        assert "google_secret_manager_secret_version" not in out["resource"]
        assert only(out, "google_secret_manager_secret")["deletion_protection"] is True
        assert only(out, "google_secret_manager_secret_iam_member")["role"] == "roles/secretmanager.secretAccessor"


class TestGithubCi:
    @pytest.fixture(scope="class")
    def out(self):
        stack = new_stack()
        state = LakeBucket(stack, "state", LakeBucketSettings(name="acme-test-tfstate", location="eu", kind=BucketKind.STATE, purpose="state"))
        GithubCiIdentities(stack, "ci", GithubCiSettings(namer=NAMER, project="acme-test", billing_account="000000-000000-000000", repository="acme/repo",
                                                         deploy_branch="main", state_bucket=state))
        return synth(stack)

    def test_provider_pins_the_repository(self, out):
        provider = only(out, "google_iam_workload_identity_pool_provider")
        assert provider["attribute_condition"] == "assertion.repository == 'acme/repo'"
        assert provider["oidc"]["issuer_uri"] == "https://token.actions.githubusercontent.com"

    def test_deployer_is_pinned_to_the_branch_and_plan_to_the_repo(self, out):
        bindings = {b["service_account_id"].split(".")[1]: b["member"] for b in of_type(out, "google_service_account_iam_member").values()}
        deployer = next(m for k, m in bindings.items() if "deployer" in k)
        plan = next(m for k, m in bindings.items() if "plan" in k)
        assert deployer.endswith("/attribute.repository_ref/acme/repo@refs/heads/main")
        assert plan.endswith("/attribute.repository/acme/repo")

    def test_no_basic_roles_and_no_keys(self, out):
        roles = [m["role"] for m in of_type(out, "google_project_iam_member").values()]
        assert roles and not {"roles/owner", "roles/editor", "roles/viewer"} & set(roles)
        assert "google_service_account_key" not in out["resource"]

    def test_plan_identity_can_only_read_state(self, out):
        state_roles = {m["member"].split("}")[0]: m["role"] for m in of_type(out, "google_storage_bucket_iam_member").values()}
        assert sorted(state_roles.values()) == ["roles/storage.objectUser", "roles/storage.objectViewer"]


class TestProjectApis:
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
