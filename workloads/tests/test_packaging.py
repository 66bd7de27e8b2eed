"""The shipped artifacts agree with the code and the lock (cheap static checks, no Docker needed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from workloads.etl.pipeline import PARAMETERS, REQUIRED_PARAMETERS
from workloads.launcher import launch_request

WORKLOADS = Path(__file__).resolve().parents[1]
LOCK = json.loads((WORKLOADS / "Pipfile.lock").read_text())


def pins(requirements: Path) -> dict[str, str]:
    result = {}
    for line in requirements.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^;\s]+)", line)
        if match:
            result[match[1].lower()] = match[3]
    return result


def locked(section: str) -> dict[str, str]:
    return {name.lower(): spec["version"].lstrip("=") for name, spec in LOCK[section].items()}


def test_etl_image_requirements_are_exactly_the_locked_packages():
    requirements = WORKLOADS / "etl" / "requirements.txt"
    assert pins(requirements) == locked("default")
    assert all("--hash=sha256:" in line for line in requirements.read_text().splitlines() if "==" in line)


def test_launcher_requirements_use_the_tested_versions():
    tested = {**locked("default"), **locked("develop")}
    launcher = pins(WORKLOADS / "launcher" / "requirements.txt")
    assert set(launcher) == {"functions-framework", "google-auth", "requests"}
    assert all(tested[name] == version for name, version in launcher.items())


def test_template_metadata_declares_exactly_the_pipeline_parameters():
    metadata = json.loads((WORKLOADS / "etl" / "metadata.json").read_text())
    declared = [p["name"] for p in metadata["parameters"]]
    assert declared == list(PARAMETERS) == list(launch_request.ETL_PARAMETERS)
    optional = {p["name"] for p in metadata["parameters"] if p.get("isOptional")}
    assert optional == set(PARAMETERS) - set(REQUIRED_PARAMETERS)
    assert set(launch_request.REQUIRED_PARAMETERS) == set(REQUIRED_PARAMETERS)


def test_template_metadata_regexes_accept_the_contract_examples():
    examples = {
        "pipeline": "orders",
        "landing_prefix": "gs://landing-bkt/orders/",
        "output_table": "my-proj:raw.orders",
        "curated_prefix": "gs://curated-bkt/orders/",
        "quarantine_prefix": "gs://quarantine-bkt/orders/",
        "checkpoint_uri": "gs://control-bkt/checkpoints/orders.json",
        "alert_secret": "projects/my-proj/secrets/sendgrid-api-key/versions/latest",
        "archive_prefix": "gs://landing-bkt/_archive/orders/",
        "max_files_per_run": "5000",
        "max_bytes_per_run": "10240",
        "max_file_attempts": "3",
        "max_loads_per_day": "288",
        "followup_queue": "projects/my-proj/locations/europe-west1/queues/acme-dev-etl-followups",
    }
    metadata = json.loads((WORKLOADS / "etl" / "metadata.json").read_text())
    for parameter in metadata["parameters"]:
        for regex in parameter.get("regexes", []):
            assert re.match(regex, examples[parameter["name"]]), parameter["name"]


def test_image_uses_the_locked_beam_and_python():
    dockerfile = (WORKLOADS / "etl" / "Dockerfile").read_text()
    assert f"ARG BEAM_VERSION={locked('default')['apache-beam']}" in dockerfile
    assert "FROM apache/beam_python3.11_sdk:${BEAM_VERSION}" in dockerfile
    assert "FROM gcr.io/dataflow-templates-base/python311-template-launcher-base" in dockerfile
    for source in re.findall(r"^COPY (?!--from)(\S+)", dockerfile, re.M):
        assert (WORKLOADS / source).exists(), source
    ignored = (WORKLOADS / ".dockerignore").read_text().split()
    assert "etl/" not in ignored and ".venv/" in ignored


def test_cloudbuild_builds_pushes_and_writes_the_template_spec():
    """Run from the repository root (like the trigger); every path it names must exist there."""
    repo = WORKLOADS.parent
    build = yaml.safe_load((WORKLOADS / "etl" / "cloudbuild.yaml").read_text())
    steps = {step["id"]: step for step in build["steps"]}
    image = "${_IMAGE}:${BUILD_ID}"
    assert steps["build-image"]["args"] == [
        "build", "--file=workloads/etl/Dockerfile", f"--build-arg=IMAGE={image}",
        f"--tag={image}", "--tag=${_IMAGE}:latest", "workloads",
    ]
    assert steps["push-image"]["args"] == ["push", "--all-tags", "${_IMAGE}"]
    template = steps["build-template-spec"]["args"]
    assert template[:4] == ["dataflow", "flex-template", "build", "${_TEMPLATE_PATH}"]
    assert f"--image={image}" in template and "--metadata-file=workloads/etl/metadata.json" in template
    assert (repo / "workloads/etl/Dockerfile").exists() and (repo / "workloads/etl/metadata.json").exists()
    assert build["options"]["substitutionOption"] == "MUST_MATCH"
