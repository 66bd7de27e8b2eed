"""Inventory tier (Cloud Foundation Fabric style): per stack, resource counts by type and
key values by construct path, kept in tests/inventories/<stack>.yaml.

A change that adds, removes or reshapes resources must update the inventory in the same
pull request, which makes the change visible to reviewers.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.support import by_path, is_subset, iter_resources

INVENTORIES = Path(__file__).parent / "inventories"
STACKS = sorted(p.stem for p in INVENTORIES.glob("*.yaml"))


def test_every_synthesized_stack_has_an_inventory(stacks):
    assert sorted(stacks) == STACKS


@pytest.mark.parametrize("stack_name", STACKS)
def test_counts(stacks, stack_name):
    expected = yaml.safe_load((INVENTORIES / f"{stack_name}.yaml").read_text())["counts"]
    actual = Counter(rtype for rtype, _, _ in iter_resources(stacks[stack_name]))
    assert dict(sorted(actual.items())) == expected


@pytest.mark.parametrize("stack_name", STACKS)
def test_values(stacks, stack_name):
    expected = yaml.safe_load((INVENTORIES / f"{stack_name}.yaml").read_text()).get("values", {})
    resources = by_path(stacks[stack_name])
    problems = []
    for path, values in expected.items():
        if path not in resources:
            problems.append(f"{path}: not synthesized")
            continue
        rtype, body = resources[path]
        problems += [f"{path}{p}" for p in is_subset(values, body)]
    assert not problems, "\n".join(problems)
