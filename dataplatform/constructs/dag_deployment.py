"""Ship the Airflow DAGs (workloads/dags) and their pipelines.json to where Airflow reads them.

lean: the artifacts bucket's `dags/` prefix, which the VM syncs every minute; managed: the
Composer environment's own bucket. The code files ship as assets (a DAG change is a new asset
hash in review); pipelines.json is generated here, so it is written inline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cdktn_provider_google.storage_bucket_object import StorageBucketObject
from constructs import Construct

from dataplatform.constructs.assets import upload

DAGS_SOURCE = Path(__file__).resolve().parents[2] / "workloads" / "dags"
DAG_FILES = ("etl_dags.py", "launch_request.py", ".airflowignore")


@dataclass(frozen=True)
class DagDeploymentSpec:
    bucket: str
    prefix: str  # e.g. "dags" (no trailing slash)
    pipelines: dict[str, dict]


class DagDeployment(Construct):
    def __init__(self, scope: Construct, id_: str, spec: DagDeploymentSpec):
        super().__init__(scope, id_)
        for name in DAG_FILES:  # launch_request.py is a link to the launcher's copy; upload resolves it
            upload(self, name.strip(".").replace(".", "-"), bucket=spec.bucket, path=DAGS_SOURCE / name,
                   object_name=f"{spec.prefix}/{name}")
        StorageBucketObject(self, "pipelines-json", bucket=spec.bucket, name=f"{spec.prefix}/pipelines.json",
                            content=json.dumps(spec.pipelines, indent=2, sort_keys=True), content_type="application/json")
