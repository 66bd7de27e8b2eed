"""fake-gcs-server, the GCS JSON API emulator, as a test-session fixture.

The binary is built from the Go module proxy by ``make fake-gcs-server`` (a dependency of
``make test``) into a cache outside the repository, like the Terraform provider:
``$GCP_DP_CACHE/bin/fake-gcs-server-<version>/fake-gcs-server`` (``GCP_DP_CACHE`` defaults to
``~/.cache/gcp-data-platform``). ``FAKE_GCS_SERVER`` overrides the path.

The server listens on 127.0.0.1 on a free port, keeps objects in memory, and is stopped when
the session ends (or after ``MAX_LIFETIME_S``, whichever comes first, so a killed test run
cannot leave it behind for long).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

VERSION = "v1.56.1"
MAX_LIFETIME_S = 900
START_TIMEOUT_S = 20


def binary_path() -> Path:
    if os.environ.get("FAKE_GCS_SERVER"):
        return Path(os.environ["FAKE_GCS_SERVER"])
    cache = Path(os.environ.get("GCP_DP_CACHE", Path.home() / ".cache" / "gcp-data-platform"))
    return cache / "bin" / f"fake-gcs-server-{VERSION}" / "fake-gcs-server"


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeGcsServer:
    def __init__(self):
        binary = binary_path()
        if not binary.exists():
            raise RuntimeError(f"fake-gcs-server not found at {binary}: run `make fake-gcs-server` (make test does)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [str(binary), "-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port),
                "-public-host", f"127.0.0.1:{self.port}", "-external-url", self.url, "-log-level", "error",
                "-backend", "memory"]
        # `timeout` bounds the server's life even if this process is killed before stop().
        self.errors = ""
        self.process = subprocess.Popen(["timeout", str(MAX_LIFETIME_S), *args],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/storage/v1/b?project=test", timeout=1).read()
                break
            except OSError as error:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"fake-gcs-server did not answer within {START_TIMEOUT_S} s: {self.errors}") from error
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr and not self.process.stderr.closed:
            self.errors = self.process.stderr.read().decode(errors="replace")[-2000:]
            self.process.stderr.close()

    def client(self, project: str = "test"):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project=project, credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": self.url})

    def create_bucket(self, name: str) -> None:
        """A versioned bucket, like the platform's landing bucket."""
        bucket = self.client().bucket(name)
        bucket.versioning_enabled = True
        self.client().create_bucket(bucket)
