#!/usr/bin/env python3
"""Build the Google Terraform provider from the Go module proxy into a local
filesystem mirror, so `terraform init` never needs a Terraform registry.

Usage:
    python -m dataplatform.tools.terraform.build_provider          # build if missing, print path
    python -m dataplatform.tools.terraform.build_provider --print  # only print the binary path
    python -m dataplatform.tools.terraform.build_provider --force  # rebuild (reuses the Go caches)

The module is built through provider/go.mod + go.sum, a build-only wrapper
module that pins the provider's pseudo-version and the checksum of every
dependency (-mod=readonly), so builds are reproducible and verified without
the checksum database.  Idempotent: nothing is done when the binary exists.

Everything heavy lives OUTSIDE the repository (override with env vars):
    GCP_DP_CACHE   root of the caches     (default ~/.cache/gcp-data-platform)
    GOMODCACHE     Go module cache         (default $GCP_DP_CACHE/go-mod)
    GOCACHE        Go build cache          (default $GCP_DP_CACHE/go-build)
    TF_MIRROR_DIR  Terraform fs mirror     (default $GCP_DP_CACHE/tf-mirror)
    GO             go binary               (default: `go` on PATH, else /usr/local/go/bin/go)

Which version, and why not 8.7.0
--------------------------------
cdktn-provider-google 21.1.0 is generated from hashicorp/google 8.7.0 and the
synthesized stacks pin `version = "8.7.0"`.  The module
github.com/hashicorp/terraform-provider-google has no /v8 suffix, so its
release tags are only reachable as pseudo-versions
(v1.20.1-0.<commit-time>-<commit>).  The Go module proxy reachable from the
project's machines serves only an allow-list of versions of this module: it
answers 403 "This module version is not available" for `@v8.7.0`, for branch and
commit queries, and for the pseudo-versions of the v7.35.0, v7.46.0 and v8.0.0
release commits; the commit of tag v8.7.0 is not in any snapshot or index we
can read, so its pseudo-version cannot even be formed.  The newest release
commit it does serve is tag v7.39.0 (commit e40b75688dfe, "Update CHANGELOG
for version 7.39.0", head of branch release-7.39.0; the same pseudo-version
Crossplane's provider-upjet-gcp go.mod pins).  That is what we build, under
its true version 7.39.0; offline_plan.py pins the work copies of the stacks to
it with an override file (never editing cdk.tf.json) and says so on every run.
Details, the compatibility comparison and how to move to 8.7.0 once its
pseudo-version is served: dataplatform/tools/terraform/README.md.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODULE = "github.com/hashicorp/terraform-provider-google"
# Tag v7.39.0 == commit e40b75688dfe7afeaf5022c22a58ca89daec7a9e (2026-06-30T17:20:28Z).
MODULE_VERSION = "v1.20.1-0.20260630172028-e40b75688dfe"
PROVIDER_VERSION = "7.39.0"
# What cdktn-provider-google 21.1.0 generates (required_providers.google.version).
TARGET_VERSION = "8.7.0"
PROVIDER_ADDR = "registry.terraform.io/hashicorp/google"
PLATFORM = "linux_amd64"
# Wrapper module (go.mod + go.sum only) that pins MODULE_VERSION and all checksums.
WRAPPER_DIR = Path(__file__).resolve().parent / "provider"


def cache_root() -> Path:
    return Path(os.environ.get("GCP_DP_CACHE", Path.home() / ".cache" / "gcp-data-platform"))


def mirror_dir() -> Path:
    return Path(os.environ.get("TF_MIRROR_DIR", cache_root() / "tf-mirror"))


def binary_path(version: str = PROVIDER_VERSION) -> Path:
    return (
        mirror_dir()
        / PROVIDER_ADDR
        / version
        / PLATFORM
        / f"terraform-provider-google_v{version}"
    )


def go_binary() -> str:
    go = os.environ.get("GO") or shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(go).exists() and not shutil.which(go):
        sys.exit(f"build_provider: no Go toolchain found (tried {go!r}); set GO=/path/to/go")
    return go


def build(force: bool = False, quiet: bool = False) -> Path:
    dest = binary_path()
    if dest.is_file() and os.access(dest, os.X_OK) and not force:
        if not quiet:
            print(f"build_provider: cached {dest}", file=sys.stderr)
        return dest

    env = dict(os.environ)
    env.setdefault("GOMODCACHE", str(cache_root() / "go-mod"))
    env.setdefault("GOCACHE", str(cache_root() / "go-build"))
    env["GOTOOLCHAIN"] = env.get("GOTOOLCHAIN", "local")
    # -mod=readonly: go.mod/go.sum of the wrapper are complete; every download is
    # verified against the committed go.sum, so no checksum-database lookups are
    # made (the one for the provider's pseudo-version 404s through the proxy).
    env["GOFLAGS"] = "-mod=readonly -buildvcs=false"
    env["CGO_ENABLED"] = "0"  # like HashiCorp's release builds; no C toolchain needed
    env.pop("GOWORK", None)
    outdir = Path(tempfile.mkdtemp(prefix="tfpg-build-"))
    ldflags = f"-s -w -X {MODULE}/version.ProviderVersion={PROVIDER_VERSION}"
    cmd = [go_binary(), "build", "-trimpath", "-ldflags", ldflags,
           "-o", str(outdir / "terraform-provider-google"), MODULE]
    if shutil.which("nice"):
        cmd = ["nice", "-n", "19", *cmd]
    print(
        f"build_provider: building google provider {PROVIDER_VERSION} ({MODULE}@{MODULE_VERSION}) "
        f"into {dest}; a cold build (download + compile) takes ~3-5 min on 2 cores",
        file=sys.stderr,
    )
    pinned = f"{MODULE} {MODULE_VERSION}"
    if pinned not in (WRAPPER_DIR / "go.mod").read_text():
        sys.exit(f"build_provider: {WRAPPER_DIR}/go.mod does not require {pinned}; keep them in sync")
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, cwd=WRAPPER_DIR)
    if proc.returncode != 0:
        shutil.rmtree(outdir, ignore_errors=True)
        sys.exit(f"build_provider: `{' '.join(cmd)}` failed with exit code {proc.returncode}")
    built = outdir / "terraform-provider-google"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.move(str(built), tmp)
    os.chmod(tmp, 0o755)
    os.replace(tmp, dest)  # atomic: a half-written binary is never picked up
    shutil.rmtree(outdir, ignore_errors=True)
    print(f"build_provider: built {dest} in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return dest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--print", action="store_true", help="only print where the binary goes")
    ap.add_argument("--force", action="store_true", help="rebuild even if the binary exists")
    args = ap.parse_args()
    if args.print:
        print(binary_path())
        return 0
    print(build(force=args.force))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
