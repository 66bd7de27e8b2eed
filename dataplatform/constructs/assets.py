"""Files the stacks ship into buckets (function source, DAGs), as synth-time assets.

The file is copied into cdktf.out and referenced by path, so cdk.tf.json stays small, and a
content change shows in review as a new asset hash instead of a rewritten blob.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from cdktn import AssetType, TerraformAsset
from cdktn_provider_google.storage_bucket_object import StorageBucketObject
from constructs import Construct


def upload(scope: Construct, id_: str, *, bucket: str, path: Path, object_name: str | Callable[[str], str],
           archive: bool = False) -> StorageBucketObject:
    """Upload `path` (a file, or a directory zipped when `archive`) as `object_name`;
    a callable name gets the content hash, for objects that must be named by version."""
    asset = TerraformAsset(scope, f"{id_}-asset", path=str(path.resolve()),
                           type=AssetType.ARCHIVE if archive else AssetType.FILE)
    name = object_name(asset.asset_hash) if callable(object_name) else object_name
    return StorageBucketObject(scope, id_, bucket=bucket, name=name, source=asset.path)
