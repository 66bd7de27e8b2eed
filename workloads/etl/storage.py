"""Object storage behind one small interface: Cloud Storage in production, local paths in the demo.

The ETL needs only six operations, and they carry its correctness argument:

* ``list`` returns objects with their *generation* (plus size and creation time), so the state
  can name the exact version of a file it has loaded (an overwritten file is a new generation,
  i.e. new data) and a run can bound itself by files and bytes;
* ``download`` fetches exactly that generation, so what is loaded is what is recorded;
* ``upload`` replaces an object atomically (readers see the old or the new object, never half);
* ``read`` / ``write_if_generation_match`` give compare-and-swap on the state object
  (GCS ``ifGenerationMatch``; 0 means "must not exist yet");
* ``archive`` moves one committed generation out of the landing folder: copy that generation
  to a name that includes it (only if absent), then delete the source only if it is still that
  generation. Both steps are idempotent, so a crash between them is repaired by the next run,
  and a file re-uploaded meanwhile (a newer generation) is never deleted.

``LocalObjectStore`` implements the same semantics on a filesystem (generation = mtime in ns,
kept strictly increasing for CAS writes, and a lock file for the compare-and-swap), so the
demo and the tests run the production pipeline code unchanged.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import threading
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from workloads.launcher.launch_request import rfc3339


@dataclass(frozen=True, order=True)
class ObjectRef:
    """One version of one object: ``uri`` is ``gs://bucket/name`` or an absolute local path.

    ``size`` (bytes) and ``created`` (RFC 3339) come with a listing; they do not take part in
    equality: the version is the identity.
    """

    uri: str
    generation: int
    size: int = field(default=0, compare=False)
    created: str = field(default="", compare=False)


class PreconditionFailed(Exception):
    """The object's generation was not the expected one: someone else wrote it first."""


class ObjectChanged(Exception):
    """The requested generation is gone (the object was overwritten or deleted since listing)."""


class ObjectStore(Protocol):
    def list(self, prefix: str) -> list[ObjectRef]:
        """All objects whose URI starts with ``prefix`` (recursively), folder placeholders excluded."""

    def download(self, ref: ObjectRef, dest_path: str) -> None:
        """Copy exactly generation ``ref.generation`` to a local file; ObjectChanged if it is gone."""

    def upload(self, src_path: str, uri: str) -> None:
        """Atomically create or replace the object at ``uri`` with a local file's content."""

    def read(self, uri: str) -> tuple[bytes | None, int]:
        """Content and generation of an object, or ``(None, 0)`` if it does not exist."""

    def write_if_generation_match(self, uri: str, data: bytes, generation: int) -> int:
        """Write only if the current generation is ``generation`` (0: absent); return the new one."""

    def archive(self, ref: ObjectRef, dest_uri: str) -> None:
        """Copy generation ``ref.generation`` to ``dest_uri`` unless it exists, then delete the
        source if it is still that generation. Idempotent; never deletes a newer generation."""


def join_uri(prefix: str, relative: str) -> str:
    """Join a folder-like prefix (gs:// or local) and a relative object name with exactly one '/'."""
    return prefix.rstrip("/") + "/" + relative.lstrip("/")


def split_gcs_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("gs://"):
        raise ValueError(f"not a gs:// URI: {uri!r}")
    bucket, _, name = uri[len("gs://"):].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri!r}")
    return bucket, name


class GcsObjectStore:
    """Cloud Storage through google-cloud-storage; the client is created lazily (not picklable)."""

    def __init__(self, project: str | None = None):
        self._project = project
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from google.cloud import storage

            self._client = storage.Client(project=self._project)
        return self._client

    def __getstate__(self):
        return {"_project": self._project, "_client": None}

    def list(self, prefix: str) -> list[ObjectRef]:
        bucket, name_prefix = split_gcs_uri(prefix)
        return [
            ObjectRef(f"gs://{bucket}/{blob.name}", int(blob.generation), int(blob.size or 0),
                      rfc3339(blob.time_created) if blob.time_created else "")
            for blob in self.client.list_blobs(bucket, prefix=name_prefix)
            if not blob.name.endswith("/")
        ]

    def download(self, ref: ObjectRef, dest_path: str) -> None:
        from google.api_core.exceptions import NotFound

        bucket, name = split_gcs_uri(ref.uri)
        blob = self.client.bucket(bucket).blob(name, generation=ref.generation)
        try:
            blob.download_to_filename(dest_path)
        except NotFound:
            raise ObjectChanged(f"{ref.uri}#{ref.generation} no longer exists") from None

    def upload(self, src_path: str, uri: str) -> None:
        bucket, name = split_gcs_uri(uri)
        self.client.bucket(bucket).blob(name).upload_from_filename(src_path)

    def read(self, uri: str) -> tuple[bytes | None, int]:
        from google.api_core.exceptions import NotFound

        bucket, name = split_gcs_uri(uri)
        blob = self.client.bucket(bucket).blob(name)
        try:
            # One request for content and generation, so they belong to the same version.
            data = blob.download_as_bytes()
        except NotFound:
            return None, 0
        return data, int(blob.generation)

    def write_if_generation_match(self, uri: str, data: bytes, generation: int) -> int:
        from google.api_core.exceptions import PreconditionFailed as GcsPreconditionFailed

        bucket, name = split_gcs_uri(uri)
        blob = self.client.bucket(bucket).blob(name)
        try:
            blob.upload_from_string(data, content_type="application/json", if_generation_match=generation)
        except GcsPreconditionFailed:
            raise PreconditionFailed(f"{uri} is no longer at generation {generation}") from None
        return int(blob.generation)

    def archive(self, ref: ObjectRef, dest_uri: str) -> None:
        from google.api_core.exceptions import NotFound
        from google.api_core.exceptions import PreconditionFailed as GcsPreconditionFailed

        bucket, name = split_gcs_uri(ref.uri)
        dest_bucket, dest_name = split_gcs_uri(dest_uri)
        source = self.client.bucket(bucket)
        try:
            source.copy_blob(source.blob(name), self.client.bucket(dest_bucket), dest_name,
                             source_generation=ref.generation, if_generation_match=0)
        except GcsPreconditionFailed:
            pass  # archived by an earlier attempt (real GCS answers 412; a re-copy would be identical anyway)
        except NotFound:
            return  # the generation is gone: archived and deleted earlier, or replaced (then kept)
        try:
            # Deleting *that generation* (not "the live object if it is that generation") can
            # never touch a newer upload, and needs no precondition (fake-gcs-server, the test
            # emulator, ignores ifGenerationMatch on delete and copy).
            source.delete_blob(name, generation=ref.generation)
        except NotFound:
            pass  # deleted by an earlier attempt


class LocalObjectStore:
    """Local-filesystem stand-in for GCS with the same generation and atomicity semantics."""

    def list(self, prefix: str) -> list[ObjectRef]:
        root = Path(prefix)
        if not root.is_dir():
            return []
        refs = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for filename in sorted(filenames):
                if filename.startswith(".") or filename.endswith(".lock"):
                    continue  # our own temp and lock files, never data
                path = os.path.join(dirpath, filename)
                stat = os.stat(path)
                created = dt.datetime.fromtimestamp(stat.st_mtime_ns / 1e9, dt.timezone.utc)
                refs.append(ObjectRef(path, stat.st_mtime_ns, stat.st_size, rfc3339(created)))
        return refs

    def download(self, ref: ObjectRef, dest_path: str) -> None:
        # Open first, then check the generation of what was opened: a concurrent replace
        # swaps the directory entry, not the open file.
        try:
            src = open(ref.uri, "rb")
        except FileNotFoundError:
            raise ObjectChanged(f"{ref.uri} no longer exists") from None
        with src, open(dest_path, "wb") as dst:
            if os.fstat(src.fileno()).st_mtime_ns != ref.generation:
                raise ObjectChanged(f"{ref.uri} is no longer at generation {ref.generation}")
            while chunk := src.read(1 << 20):
                dst.write(chunk)

    def upload(self, src_path: str, uri: str) -> None:
        with open(src_path, "rb") as src:
            self._replace(uri, src.read())

    def read(self, uri: str) -> tuple[bytes | None, int]:
        try:
            with open(uri, "rb") as f:
                return f.read(), os.fstat(f.fileno()).st_mtime_ns
        except FileNotFoundError:
            return None, 0

    def write_if_generation_match(self, uri: str, data: bytes, generation: int) -> int:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(uri + ".lock"):
            try:
                current = os.stat(uri).st_mtime_ns
            except FileNotFoundError:
                current = 0
            if current != generation:
                raise PreconditionFailed(f"{uri} is at generation {current}, not {generation}")
            self._replace(uri, data)
            new = os.stat(uri).st_mtime_ns
            if new <= current:
                # Coarse filesystem clocks can repeat a timestamp; a generation must never repeat.
                new = current + 1
                os.utime(uri, ns=(new, new))
            return new

    def archive(self, ref: ObjectRef, dest_uri: str) -> None:
        try:
            src = open(ref.uri, "rb")
        except FileNotFoundError:
            return  # archived and deleted earlier
        with src:
            if os.fstat(src.fileno()).st_mtime_ns != ref.generation:
                return  # replaced by a newer generation: that one is new data, keep it
            if not os.path.exists(dest_uri):
                self._replace(dest_uri, src.read())
        os.unlink(ref.uri)

    @staticmethod
    def _replace(uri: str, data: bytes) -> None:
        target = Path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


class _file_lock:
    """Exclusive advisory lock on a side file (between processes and between threads)."""

    _thread_lock = threading.Lock()

    def __init__(self, path: str):
        self.path = path

    def __enter__(self):
        self._thread_lock.acquire()
        self._fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._thread_lock.release()


_GCS = GcsObjectStore()
_LOCAL = LocalObjectStore()


def store_for(uri: str) -> ObjectStore:
    """The store for a URI's scheme: ``gs://`` is Cloud Storage, anything else a local path."""
    return _GCS if uri.startswith("gs://") else _LOCAL
