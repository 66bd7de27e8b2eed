"""Recorded baselines of the synthesized stacks (inventories, snapshots), derived, never hand-written.

- A stack that has no baseline yet (a new environment) gets one recorded on its first run;
  the test passes with a warning naming the file to commit. Adding an environment is one
  YAML file; its baselines follow.
- `make baselines` (`pytest --update-baselines`) re-records every baseline and deletes those
  of stacks that no longer exist. Review the diff: it is the change to the infrastructure.
- A baseline left behind by a removed stack fails the run until `make baselines` drops it.

Content hashes of shipped files (launcher zip, DAG files) are replaced by `<asset-hash>`, so
a comment in the launcher or a DAG does not rewrite every snapshot: the review report and the
workload tests cover those files' contents.
"""

from __future__ import annotations

import difflib
import json
import re
import warnings
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

UPDATE_OPTION = "--update-baselines"
COMMAND = "make baselines"
_ASSET_HASH = re.compile(r"\b[0-9A-F]{32}\b")


class BaselineRecorded(UserWarning):
    """A new stack's baseline was written; commit it."""


def without_asset_hashes(value: Any) -> Any:
    """`value` with every asset content hash (32 upper-case hex digits) replaced by `<asset-hash>`."""
    return json.loads(_ASSET_HASH.sub("<asset-hash>", json.dumps(value)))


def _yaml_dump(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=True, width=120, allow_unicode=True)


def _json_dump(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class Baselines:
    """One kind of baseline: a file per stack in `directory`."""

    def __init__(self, directory: Path, suffix: str, header: str = ""):
        self.directory, self.suffix, self.header = directory, suffix, header
        self._dump: Callable[[Any], str] = _yaml_dump if suffix == ".yaml" else _json_dump

    def path(self, stack: str) -> Path:
        return self.directory / f"{stack}{self.suffix}"

    def recorded(self) -> list[str]:
        return sorted(p.name.removesuffix(self.suffix) for p in self.directory.glob(f"*{self.suffix}"))

    def text(self, value: Any) -> str:
        return (f"# {self.header}\n" if self.header and self.suffix == ".yaml" else "") + self._dump(value)

    def check(self, config: pytest.Config, stack: str, actual: Any) -> None:
        path, text = self.path(stack), self.text(actual)
        if config.getoption(UPDATE_OPTION) or not path.exists():
            new = not path.exists()
            path.parent.mkdir(parents=True, exist_ok=True)
            if new or path.read_text() != text:
                path.write_text(text)
            if new and not config.getoption(UPDATE_OPTION):
                warnings.warn(BaselineRecorded(f"recorded {path.relative_to(path.parents[2])} for the new stack {stack}: "
                                               "review and commit it"), stacklevel=2)
            return
        expected = path.read_text()
        if expected != text:
            diff = list(difflib.unified_diff(expected.splitlines(), text.splitlines(), f"{path.name} (recorded)",
                                             f"{path.name} (this synth)", lineterm="", n=2))
            shown = "\n".join(diff[:80]) + (f"\n... {len(diff) - 80} more diff lines" if len(diff) > 80 else "")
            pytest.fail(f"{stack} differs from {path.name}; if the change is intended: {COMMAND}\n{shown}", pytrace=False)

    def prune(self, config: pytest.Config, stacks: list[str]) -> list[str]:
        """Baselines of stacks that no longer exist: deleted under --update-baselines, else returned."""
        stale = sorted(set(self.recorded()) - set(stacks))
        if config.getoption(UPDATE_OPTION):
            for stack in stale:
                self.path(stack).unlink()
            return []
        return stale
