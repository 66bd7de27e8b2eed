"""`make new-env NAME=staging FROM=dev PROJECT_NUMBER=...`: a new environment as a copy of another.

Writes environments/<NAME>.yaml from environments/<FROM>.yaml (comments kept) with its own
name, project id and project number, and validates every environment file with it. That file
is the whole change: tests, inventories, snapshots and the workflows' matrices follow from it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dataplatform import naming
from dataplatform.config import ENVIRONMENTS_DIR, ConfigError
from dataplatform.config_loader import SUFFIX, check_text, display, load_environments


def new_environment_text(source_text: str, source: str, name: str, project_id: str, project_number: str) -> str:
    """The source file's text with its top-level name, project_id and project_number replaced."""
    env, problems, doc = check_text(source_text, source)
    if problems:
        raise ConfigError(problems)
    lines = source_text.splitlines(keepends=True)
    for key, value in (("name", name), ("project_id", project_id), ("project_number", f'"{project_number}"')):
        index = doc.lines[(key,)] - 1
        lines[index] = f"{key}: {value}\n"
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the new environment's id (a-z 0-9, 2-10 chars), e.g. staging")
    parser.add_argument("--from", dest="source", required=True, help="environment to copy, e.g. dev")
    parser.add_argument("--project-id", help="its GCP project id (default: the copied id with the environment name swapped)")
    parser.add_argument("--project-number", help="its GCP project number: gcloud projects describe <id> --format='value(projectNumber)'")
    parser.add_argument("--dir", type=Path, default=ENVIRONMENTS_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    target, source = args.dir / f"{args.name}{SUFFIX}", args.dir / f"{args.source}{SUFFIX}"
    if not naming.is_valid("environment", args.name):
        return _fail(f"NAME={args.name!r}: expected {naming.describe('environment')}")
    if target.exists():
        return _fail(f"{display(target)} exists already")
    if not source.exists():
        known = ", ".join(sorted(p.stem for p in args.dir.glob(f"*{SUFFIX}")))
        return _fail(f"FROM={args.source!r}: no {display(source)} (environments: {known})")
    text = source.read_text()
    _, _, doc = check_text(text, display(source))
    old_id = doc.data.get("project_id", "") if isinstance(doc.data, dict) else ""
    project_id = args.project_id or (old_id.replace(args.source, args.name) if args.source in old_id else None)
    if not project_id:
        return _fail(f"PROJECT_ID=<the {args.name} project's id> is needed: {old_id!r} does not contain {args.source!r}")
    if not args.project_number:
        return _fail(f"PROJECT_NUMBER=<number> is needed (service agents are named after it): "
                     f"gcloud projects describe {project_id} --format='value(projectNumber)'")
    try:
        target.write_text(new_environment_text(text, display(source), args.name, project_id, args.project_number))
        load_environments(args.dir)
    except ConfigError as exc:
        target.unlink(missing_ok=True)
        return _fail(f"{display(target)} not written:\n{exc}")
    print(f"wrote {display(target)} (a copy of {display(source)}: project {project_id}, number {args.project_number})\n"
          f"next: review it, then `make test` (it records tests/inventories/{args.name}-*.yaml and "
          f"tests/__snapshots__/{args.name}-*.json); commit them with the file; create the GitHub environment "
          f"{args.name!r} and add it to the CI_IDENTITIES variable once its bootstrap is deployed (README: Add an environment)")
    return 0


def _fail(message: str) -> int:
    print(f"new-env: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
