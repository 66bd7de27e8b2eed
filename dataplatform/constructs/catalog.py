"""Dataplex Universal Catalog scans per pipeline table: a data profile and data quality.

Each scan waits for the table it reads and for the Dataplex agent's read grant on the dataset
(dataplatform/ordering.py): the table is named by a string, not a reference.

Quality rules come from the pipeline's schema in config: REQUIRED columns must be
non-null, min/max become range expectations (the same rules the ETL enforces, checked
again on what actually landed). Data Catalog is retired; nothing here uses it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from cdktn_provider_google.dataplex_datascan import DataplexDatascan, DataplexDatascanDataQualitySpecRules
from constructs import Construct

from dataplatform.config import FieldMode, Pipeline


RULE_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
"""Dataplex rule names: letters, digits and hyphens, 1-63 chars, starting with a letter, ending with a letter or digit."""


def rule_name(column: str, suffix: str) -> str:
    """A Dataplex rule name for a check on `column` (BigQuery columns allow '_', rule names do not)."""
    base = re.sub(r"-+", "-", column.lower().replace("_", "-")).strip("-") or "column"
    if not base[0].isalpha():
        base = f"c-{base}"
    name = f"{base}-{suffix}"
    if len(name) > 63:  # keep names unique when long columns share a prefix
        digest = hashlib.sha1(column.encode()).hexdigest()[:6]
        name = f"{base[:63 - len(suffix) - len(digest) - 2].rstrip('-')}-{digest}-{suffix}"
    if not RULE_NAME.match(name):
        raise ValueError(f"data quality rule name {name!r} does not match {RULE_NAME.pattern}")
    return name


def quality_rules(pipeline: Pipeline) -> list[dict]:
    rules = []
    for field in pipeline.schema_:
        if field.mode == FieldMode.REQUIRED:
            rules.append({"column": field.name, "dimension": "COMPLETENESS", "non_null_expectation": {},
                          "threshold": pipeline.quality_threshold, "name": rule_name(field.name, "not-null")})
        if field.min is not None or field.max is not None:
            bounds = {k: str(v) for k, v in (("min_value", field.min), ("max_value", field.max)) if v is not None}
            rules.append({"column": field.name, "dimension": "VALIDITY", "ignore_null": True,
                          "range_expectation": bounds, "threshold": pipeline.quality_threshold,
                          "name": rule_name(field.name, "in-range")})
    rules.append({"dimension": "VALIDITY", "name": "table-not-empty",
                  "table_condition_expectation": {"sql_expression": "COUNT(*) > 0"}})
    return rules


@dataclass(frozen=True)
class TableScansSpec:
    profile_scan_id: str
    quality_scan_id: str
    region: str
    project: str
    dataset_id: str
    pipeline: Pipeline


class TableScans(Construct):
    def __init__(self, scope: Construct, id_: str, spec: TableScansSpec):
        super().__init__(scope, id_)
        p = spec.pipeline
        resource = f"//bigquery.googleapis.com/projects/{spec.project}/datasets/{spec.dataset_id}/tables/{p.name}"
        common = {
            "location": spec.region,
            "data": {"resource": resource},
            "execution_spec": {"trigger": {"schedule": {"cron": p.quality_schedule}}},
        }
        self.profile = DataplexDatascan(self, "profile", data_scan_id=spec.profile_scan_id,
                                        description=f"Data profile of {p.name}",
                                        data_profile_spec={"sampling_percent": 100}, **common)
        self.quality = DataplexDatascan(self, "quality", data_scan_id=spec.quality_scan_id,
                                        description=f"Data quality of {p.name} (rules from its schema)",
                                        data_quality_spec={"sampling_percent": 100, "rules": [DataplexDatascanDataQualitySpecRules(**r) for r in quality_rules(p)]},
                                        **common)
