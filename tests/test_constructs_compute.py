"""Construct tier for the compute and operations constructs."""

from __future__ import annotations

import base64
import json
import re

import pytest

from dataplatform.config import AirflowVmSettings, ComposerSettings, DataprocSettings, Pipeline
from dataplatform.constructs.analytics import AnalyticsCluster, AnalyticsClusterSpec
from dataplatform.constructs.budget import Budget, BudgetSpec
from dataplatform.constructs.catalog import RULE_NAME, quality_rules, rule_name
from dataplatform.constructs.iam import Principal
from dataplatform.constructs.orchestration import AirflowVm, AirflowVmSpec, Composer, ComposerSpec, render_startup_script
from dataplatform.constructs.processing.launcher_package import packaged_launcher_source
from dataplatform.constructs.processing.scheduled_launches import ScheduledLaunches, ScheduledLaunchSpec
from dataplatform.constructs.service_account import WorkloadIdentityRef
from tests.support import new_stack, of_type, only, synth

OPS = Principal.group("operators", "ops@acme.example")
PIPELINE = Pipeline.model_validate({"name": "orders", "trigger": "scheduled", "schedule": "0 * * * *", "schema": [
    {"name": "id", "type": "STRING", "mode": "REQUIRED"}, {"name": "amount", "type": "NUMERIC", "min": 0, "max": 10}]})


def identity(stack, key="orchestrator"):
    """A workload account as the platform stack names it (the bootstrap stack creates it)."""
    return WorkloadIdentityRef(key, f"acme-test-{key}@p.iam.gserviceaccount.com", "p")


class TestAirflowVm:
    @pytest.fixture(scope="class")
    def out(self):
        stack = new_stack()
        AirflowVm(stack, "airflow", AirflowVmSpec(name="acme-test-airflow", zone="europe-west1-b", subnet_self_link="subnet",
                                                  identity=identity(stack), operators=OPS, dags_url="gs://acme-a/dags",
                                                  settings=AirflowVmSettings(airflow_version="3.3.2")))
        return synth(stack)

    def test_vm_is_private_shielded_and_uses_os_login(self, out):
        vm = only(out, "google_compute_instance")
        assert all("access_config" not in nic for nic in vm["network_interface"])
        assert vm["shielded_instance_config"] == {"enable_integrity_monitoring": True, "enable_secure_boot": True, "enable_vtpm": True}
        assert vm["metadata"]["enable-oslogin"] == "TRUE"
        assert "tags" not in vm, "the firewall admits IAP by the VM's service account, not by a tag"

    def test_startup_script_installs_the_pinned_airflow(self, out):
        script = only(out, "google_compute_instance")["metadata_startup_script"]
        assert 'AIRFLOW_VERSION="3.3.2"' in script
        assert "constraints-$${AIRFLOW_VERSION}" in script, "shell ${...} must be escaped for Terraform"
        assert "${" not in script.replace("$${", "")
        assert 'SERVICES="scheduler api-server dag-processor triggerer"' in script  # Airflow 3 layout
        assert "apache-airflow[google,apache-beam]==" in script  # the DAGs' Dataflow hook needs the Beam provider
        assert not re.search(r"(?<![A-Z_])__(AIRFLOW_VERSION|DAGS_URL|UI_PORT)__", script), "unrendered placeholder"

    def test_only_operators_may_tunnel(self, out):
        iap = only(out, "google_iap_tunnel_instance_iam_member")
        assert iap["member"] == "group:ops@acme.example" and iap["role"] == "roles/iap.tunnelResourceAccessor"


def test_startup_script_is_valid_bash(tmp_path):
    import subprocess

    path = tmp_path / "startup.sh"
    path.write_text(render_startup_script("2.10.5", "gs://b/dags"))
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0


@pytest.mark.parametrize("high,mode", [(True, "HIGH_RESILIENCE"), (False, "STANDARD_RESILIENCE")])
def test_composer_is_private_and_resilience_follows_sla(high, mode):
    stack = new_stack()
    Composer(stack, "composer", ComposerSpec(name="acme-test-composer", project="p", project_number="1234567", region="europe-west1",
                                             network_id="net", subnet_id="sub", identity=identity(stack), operators=OPS,
                                             high_resilience=high, settings=ComposerSettings(max_workers=4)))
    out = synth(stack)
    cfg = only(out, "google_composer_environment")["config"]
    assert cfg["enable_private_environment"] is True and cfg["enable_private_builds_only"] is True
    assert cfg["resilience_mode"] == mode
    assert cfg["workloads_config"]["worker"]["max_count"] == 4
    # 6 h on Saturday and Sunday: the 12 h a week Composer needs (the default of 4 h gave 8 h)
    assert cfg["maintenance_window"] == {"start_time": "2026-01-01T02:00:00Z", "end_time": "2026-01-01T08:00:00Z",
                                         "recurrence": "FREQ=WEEKLY;BYDAY=SA,SU"}
    assert "google_service_account_iam_member" not in out["resource"], "grants on the account are the bootstrap's"
    assert sorted(m["role"] for m in of_type(out, "google_project_iam_member").values()) == ["roles/composer.user", "roles/composer.worker"]


@pytest.mark.parametrize("autoscaling", [False, True])
def test_dataproc_is_internal_stops_when_idle_and_keeps_notebooks(autoscaling):
    stack = new_stack()
    AnalyticsCluster(stack, "dp", AnalyticsClusterSpec(
        name="acme-test-dp", autoscaling_policy_id="acme-test-dp-as", region="europe-west1", subnet_self_link="s",
        identity=identity(stack, "dataproc"), staging_bucket="acme-test-notebooks", temp_bucket="acme-test-temp",
        notebooks_url="gs://acme-test-notebooks/notebooks/jupyter", autoscaling=autoscaling,
        settings=DataprocSettings(idle_stop_minutes=45, worker_machine_type="n1-standard-8")))
    out = synth(stack)
    cluster = only(out, "google_dataproc_cluster")
    cfg = cluster["cluster_config"]
    assert cfg["gce_cluster_config"]["internal_ip_only"] is True
    assert cfg["lifecycle_config"] == {"idle_stop_ttl": "2700s"}, "stopped, never deleted behind Terraform's back"
    assert cfg["software_config"]["image_version"] == "2.2-debian12"
    assert (cfg["staging_bucket"], cfg["temp_bucket"]) == ("acme-test-notebooks", "acme-test-temp")
    assert cfg["software_config"]["override_properties"]["dataproc:jupyter.notebook.gcs.dir"] == "gs://acme-test-notebooks/notebooks/jupyter"
    if autoscaling:
        assert cfg["preemptible_worker_config"]["preemptibility"] == "SPOT"
        assert cfg["worker_config"]["accelerators"] == [{"accelerator_count": 1, "accelerator_type": "nvidia-tesla-t4"}]
        assert cfg["worker_config"]["machine_type"] == "n1-standard-8" and cfg["master_config"]["machine_type"] == "n2-standard-4"
        assert cfg["gce_cluster_config"]["shielded_instance_config"]["enable_secure_boot"] is False, "GPU driver module is unsigned"
        assert cluster["lifecycle"]["ignore_changes"] == ["cluster_config[0].worker_config[0].num_instances",
                                                          "cluster_config[0].preemptible_worker_config[0].num_instances"]
        assert only(out, "google_dataproc_autoscaling_policy")["secondary_worker_config"]["max_instances"] == 10
    else:
        assert cfg["gce_cluster_config"]["shielded_instance_config"]["enable_secure_boot"] is True
        assert cfg["worker_config"] == {"num_instances": 0}
        assert "JUPYTER" in cfg["software_config"]["optional_components"]
        assert cfg["endpoint_config"]["enable_http_port_access"] is True


def test_quality_rules_follow_the_schema():
    rules = quality_rules(PIPELINE)
    assert {"column": "id", "dimension": "COMPLETENESS", "non_null_expectation": {}, "threshold": 0.99, "name": "id-not-null"} in rules
    assert all(RULE_NAME.match(r["name"]) for r in rules)
    ranged = next(r for r in rules if r.get("range_expectation"))
    assert ranged["column"] == "amount" and ranged["range_expectation"] == {"min_value": "0.0", "max_value": "10.0"}


def test_scheduled_launch_asks_the_launcher_for_a_run_through_the_follow_up_queue():
    stack = new_stack()
    queue = "projects/p/locations/europe-west1/queues/acme-test-etl-followups"
    ScheduledLaunches(stack, "s", ScheduledLaunchSpec(project="p", region="europe-west1", job_names={"orders": "acme-test-orders"},
                                                      identity=identity(stack, "launcher"), followup_queue=queue,
                                                      schedules={"orders": "0 * * * *"}))
    job = only(synth(stack), "google_cloud_scheduler_job")
    assert job["name"] == "acme-test-orders" and job["schedule"] == "0 * * * *"
    assert job["http_target"]["uri"] == f"https://cloudtasks.googleapis.com/v2/{queue}/tasks"
    task = json.loads(base64.b64decode(job["http_target"]["body"]))["task"]
    assert "name" not in task and "scheduleTime" not in task  # every tick is a new request, made now
    assert json.loads(base64.b64decode(task["httpRequest"]["body"])) == {"pipeline": "orders", "reason": "schedule"}
    assert task["httpRequest"]["headers"]["ce-type"] == "dataplatform.etl.v1.runRequested"
    assert "launchParameter" not in json.dumps(task)  # no launch settings outside the launcher
    assert job["http_target"]["oauth_token"]["scope"] == "https://www.googleapis.com/auth/cloud-platform"


def test_launcher_package_has_only_runtime_files():
    from pathlib import Path

    files = sorted(p.name for p in Path(packaged_launcher_source()).iterdir())
    assert "main.py" in files and "requirements.txt" in files
    assert not [f for f in files if f.startswith("test_") or f == "__pycache__"]


def test_budget_thresholds_and_topic():
    stack = new_stack()
    Budget(stack, "b", BudgetSpec(name="acme-test-budget", topic_name="acme-test-budget-alerts", billing_account="000000-000000-000000", project_number="42",
                                  amount=100, currency="EUR", channel_ids=["c1"]))
    out = synth(stack)
    budget = only(out, "google_billing_budget")
    assert [(r["threshold_percent"], r["spend_basis"]) for r in budget["threshold_rules"]] == [
        (0.5, "CURRENT_SPEND"), (0.9, "CURRENT_SPEND"), (1, "CURRENT_SPEND"), (1, "FORECASTED_SPEND")]
    assert budget["all_updates_rule"]["monitoring_notification_channels"] == ["c1"]
    assert budget["all_updates_rule"]["pubsub_topic"].startswith("${google_pubsub_topic.")


@pytest.mark.parametrize("column, suffix, expected", [
    ("order_id", "not-null", "order-id-not-null"),  # '_' is not allowed in rule names
    ("_private", "in-range", "private-in-range"),  # must start with a letter
    ("a" * 54, "not-null", "a" * 54 + "-not-null"),  # 63 chars: at the limit, kept whole
])
def test_rule_names_are_what_dataplex_accepts(column, suffix, expected):
    assert rule_name(column, suffix) == expected and len(expected) <= 63


def test_long_rule_names_stay_unique_and_within_63_chars():
    one, two = rule_name("x" * 55 + "_one", "not-null"), rule_name("x" * 55 + "_two", "not-null")
    assert one != two and len(one) == len(two) == 63 and RULE_NAME.match(one) and RULE_NAME.match(two)


def test_processing_holds_one_construct_per_file_and_keeps_its_imports():
    """constructs/processing/: a module per construct (or per helper), the package re-exports them."""
    import ast
    import importlib
    from pathlib import Path

    import dataplatform.constructs.processing as processing

    folder = Path(processing.__file__).parent
    for path in sorted(folder.glob("*.py")):
        classes = [n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.ClassDef)
                   and any(getattr(b, "id", None) == "Construct" for b in n.bases)]
        assert len(classes) <= 1, (path.name, classes)
    for name in ("ImageRepository", "Launcher", "LauncherSpec", "ScheduledLaunches", "ScheduledLaunchSpec", "etl_launch_config"):
        module = importlib.import_module(getattr(processing, name).__module__)
        assert module.__name__.startswith("dataplatform.constructs.processing.") and getattr(module, name) is getattr(processing, name)
