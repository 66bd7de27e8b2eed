"""A lake bucket with safe defaults: private, uniform access, tiered, kept on destroy."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from cdktn import TerraformResourceLifecycle
from cdktn_provider_google.storage_bucket import (
    StorageBucket,
    StorageBucketLifecycleRule,
    StorageBucketLifecycleRuleAction,
    StorageBucketLifecycleRuleCondition,
    StorageBucketSoftDeletePolicy,
    StorageBucketVersioning,
)
from cdktn_provider_google.storage_bucket_iam_member import StorageBucketIamMember
from cdktn_provider_google.storage_managed_folder import StorageManagedFolder
from cdktn_provider_google.storage_managed_folder_iam_member import StorageManagedFolderIamMember
from constructs import Construct

from dataplatform.constructs.iam import Principal, ResourceIam, grant_member


class BucketKind(Enum):
    """What a bucket holds decides how it is protected and aged."""

    DATA = "data"  # business data: versioned, tiered, prevent_destroy
    CONTROL = "control"  # small hot state (checkpoints): versioned, prevent_destroy, never tiered
    ARTIFACTS = "artifacts"  # build outputs: versioned, old versions expire
    TEMP = "temp"  # scratch: objects expire after days
    STATE = "state"  # Terraform state: versioned, prevent_destroy


PROTECTED_KINDS = {BucketKind.DATA, BucketKind.CONTROL, BucketKind.STATE}


@dataclass(frozen=True)
class LakeBucketSettings:
    name: str
    location: str
    kind: BucketKind
    nearline_after_days: int = 90
    coldline_after_days: int = 365
    noncurrent_version_days: int = 30
    temp_object_days: int = 7
    soft_delete_days: int = 7
    folders: tuple[str, ...] = field(default=())


def _rule(action: str, storage_class: str | None = None, **condition) -> StorageBucketLifecycleRule:
    return StorageBucketLifecycleRule(
        action=StorageBucketLifecycleRuleAction(type=action, storage_class=storage_class),
        condition=StorageBucketLifecycleRuleCondition(**condition),
    )


def lifecycle_rules(s: LakeBucketSettings) -> list[StorageBucketLifecycleRule]:
    """Aging per kind; every kind aborts stale multipart uploads."""
    rules = [_rule("AbortIncompleteMultipartUpload", age=1)]
    if s.kind is BucketKind.TEMP:
        return rules + [_rule("Delete", age=s.temp_object_days)]
    if s.kind is BucketKind.DATA:
        rules += [
            _rule("SetStorageClass", "NEARLINE", age=s.nearline_after_days, matches_storage_class=["STANDARD"]),
            _rule("SetStorageClass", "COLDLINE", age=s.coldline_after_days, matches_storage_class=["STANDARD", "NEARLINE"]),
        ]
    # Versioned kinds: overwritten/deleted versions are kept for a while, then expire.
    return rules + [_rule("Delete", with_state="ARCHIVED", days_since_noncurrent_time=s.noncurrent_version_days)]


class LakeBucket(Construct, ResourceIam):
    """One GCS bucket of the lake. Grants are made here, scoped to this bucket or folder."""

    _iam_member_class = StorageBucketIamMember

    def __init__(self, scope: Construct, id_: str, settings: LakeBucketSettings):
        super().__init__(scope, id_)
        self.settings = settings
        protected = settings.kind in PROTECTED_KINDS
        self.bucket = StorageBucket(
            self,
            "bucket",
            name=settings.name,
            location=settings.location.upper(),
            storage_class="STANDARD",
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            force_destroy=False,
            versioning=StorageBucketVersioning(enabled=settings.kind is not BucketKind.TEMP),
            soft_delete_policy=StorageBucketSoftDeletePolicy(retention_duration_seconds=settings.soft_delete_days * 86400),
            lifecycle_rule=lifecycle_rules(settings),
            lifecycle=TerraformResourceLifecycle(prevent_destroy=protected),
        )
        self.name: str = self.bucket.name  # the token, read once (each read is a jsii round trip)
        self._folders: dict[str, StorageManagedFolder] = {}
        for folder in settings.folders:
            self._folders[folder] = StorageManagedFolder(
                self,
                f"folder-{folder}",
                bucket=self.name,
                name=f"{folder}/",
                force_destroy=False,
                lifecycle=TerraformResourceLifecycle(prevent_destroy=protected),
            )

    def _iam_target(self):
        return {"bucket": self.name}

    def url(self, path: str = "") -> str:
        return f"gs://{self.settings.name}/{path}"

    def grant_read(self, principal: Principal):
        return self.bind("roles/storage.objectViewer", principal)

    def grant_create(self, principal: Principal):
        """Create-only: cannot read, overwrite or delete (quarantine writers, uploaders)."""
        return self.bind("roles/storage.objectCreator", principal)

    def grant_read_write(self, principal: Principal):
        """Read, create, overwrite and delete objects (not bucket settings or IAM)."""
        return self.bind("roles/storage.objectUser", principal)

    def grant_create_in(self, folder: str, principal: Principal):
        """Create objects under one managed folder only: the per-folder 'ACL' under uniform access."""
        return self._grant_in(folder, "roles/storage.objectCreator", principal)

    def grant_read_write_in(self, folder: str, principal: Principal):
        """Read, create, overwrite and delete objects under one managed folder only."""
        return self._grant_in(folder, "roles/storage.objectUser", principal)

    def _grant_in(self, folder: str, role: str, principal: Principal):
        if folder not in self._folders:
            raise KeyError(f"{self.node.path} has no managed folder {folder!r}; declare it in folders")
        return grant_member(self, StorageManagedFolderIamMember, f"iam-{role.rsplit('.', 1)[-1].lower()}-{principal.key}-in-{folder}",
                            role, principal, on_owner=True, bucket=self.name, managed_folder=self._folders[folder].name)
