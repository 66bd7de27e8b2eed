"""The launcher function's source as deployed: only what the function needs, named by content."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from dataplatform.config import REPO_ROOT
LAUNCHER_SOURCE = REPO_ROOT / "workloads" / "launcher"


def packaged_launcher_source() -> Path:
    """A copy of the launcher with only what the function needs (no tests, no caches),
    so the archive hash, and thus the deployed object, changes only with the code.
    Named by content hash, so repeated synths reuse one directory instead of piling up."""
    files = sorted(p for p in LAUNCHER_SOURCE.iterdir()
                   if p.is_file() and (p.suffix == ".py" or p.name == "requirements.txt") and not p.name.startswith("test_"))
    digest = hashlib.sha256(b"".join(p.name.encode() + b"\0" + p.read_bytes() for p in files)).hexdigest()[:16]
    staging = Path(tempfile.gettempdir()) / f"dataplatform-launcher-{digest}"
    if not staging.is_dir():
        partial = Path(tempfile.mkdtemp(prefix="dataplatform-launcher-"))
        for path in files:
            shutil.copy2(path, partial / path.name)
        try:
            partial.rename(staging)  # atomic: a concurrent synth either wins or finds it done
        except OSError:
            shutil.rmtree(partial)
    return staging
