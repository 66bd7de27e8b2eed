"""The launch contract: one pipeline's entry in the launcher function's PIPELINES_JSON.

The function (workloads/launcher) reads exactly this; it is the only copy of the launch
settings, so no second copy can drift.
"""

from __future__ import annotations

from dataplatform.config import Pipeline


def etl_launch_config(pipeline: Pipeline, *, parameters: dict[str, str], environment: dict) -> dict:
    """One pipeline's entry of the launcher's PIPELINES_JSON (the launcher's contract)."""
    return {"parameters": parameters, "environment": {**environment, "maxWorkers": pipeline.max_workers},
            "on_arrival": pipeline.on_arrival}
