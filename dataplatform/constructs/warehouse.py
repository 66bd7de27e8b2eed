"""The BigQuery warehouse: one dataset per environment, one table per pipeline."""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktn import TerraformResourceLifecycle
from cdktn_provider_google.bigquery_dataset import BigqueryDataset
from cdktn_provider_google.bigquery_dataset_iam_member import BigqueryDatasetIamMember
from cdktn_provider_google.bigquery_table import BigqueryTable, BigqueryTableTimePartitioning
from constructs import Construct

from dataplatform.config import Pipeline
from dataplatform.constructs.iam import Principal, ResourceIam


@dataclass(frozen=True)
class WarehouseSettings:
    dataset_id: str
    location: str
    pipelines: tuple[Pipeline, ...]
    description: str = "Curated tables loaded by the platform's ETL."


class Warehouse(Construct, ResourceIam):
    """Dataset and tables survive `destroy`: contents kept, deletion protection on."""

    _iam_member_class = BigqueryDatasetIamMember

    def __init__(self, scope: Construct, id_: str, settings: WarehouseSettings):
        super().__init__(scope, id_)
        self.dataset = BigqueryDataset(
            self,
            "dataset",
            dataset_id=settings.dataset_id,
            location=settings.location,
            description=settings.description,
            delete_contents_on_destroy=False,
            max_time_travel_hours="168",
            lifecycle=TerraformResourceLifecycle(prevent_destroy=True),
        )
        self.tables: dict[str, BigqueryTable] = {}
        for pipeline in settings.pipelines:
            self.tables[pipeline.name] = BigqueryTable(
                self,
                f"table-{pipeline.name}",
                dataset_id=self.dataset.dataset_id,
                table_id=pipeline.name,
                description=pipeline.description or f"Rows of pipeline {pipeline.name}",
                schema=json.dumps([f.bigquery() for f in pipeline.schema_]),
                # Partitioned on the event time when the pipeline names its column (queries prune by
                # when things happened, late files land in the right partition); ingestion time otherwise.
                time_partitioning=BigqueryTableTimePartitioning(
                    type=pipeline.partition_granularity.value, field=pipeline.partition_by),
                clustering=list(pipeline.cluster_by) or None,
                deletion_protection=True,
                lifecycle=TerraformResourceLifecycle(prevent_destroy=True),
            )
        self.dataset_id = settings.dataset_id

    def _iam_target(self):
        return {"dataset_id": self.dataset.dataset_id}

    def table_ref(self, project: str, pipeline: str) -> str:
        """`project:dataset.table`, the form Beam's WriteToBigQuery takes."""
        return f"{project}:{self.dataset_id}.{pipeline}"

    def grant_write(self, principal: Principal) -> None:
        """Append/overwrite rows of this dataset's tables (not create datasets elsewhere)."""
        self.bind("roles/bigquery.dataEditor", principal)

    def grant_read(self, principal: Principal) -> None:
        self.bind("roles/bigquery.dataViewer", principal)
