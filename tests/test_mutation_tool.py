"""`make mutation` (dataplatform/tools/mutation.py): its configuration stays applicable, and the
parts that decide what a mutant runs and how it counts do what the README says. The mutation
run itself is not part of make test (README, Tests: mutation testing)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from dataplatform.tools import mutation
from dataplatform.tools.mutation import Equivalent, Group, Mutant

REPO = Path(__file__).resolve().parent.parent
CONFIG = mutation.load_config()


def test_every_group_names_existing_modules_tests_and_venvs():
    modules = [m for g in CONFIG.groups for m in g.modules]
    assert len(modules) == len(set(modules)), "a module in two groups"
    for group in CONFIG.groups:
        assert group.python in (".venv/bin/python", "workloads/.venv/bin/python"), group.name
        for path in (*group.modules, *group.tests):
            assert (REPO / path).exists(), path
        assert "cdktn" not in group.preload, "importing cdktn starts the jsii runtime: a fork would share it"


def test_the_issue_modules_are_all_mutated():
    modules = {m for g in CONFIG.groups for m in g.modules}
    expected = {str(p.relative_to(REPO)) for p in (REPO / "dataplatform" / "guardrails").glob("*.py")}
    expected |= {"dataplatform/config.py", "dataplatform/config_loader.py", "dataplatform/cron.py", "dataplatform/naming.py",
                 "dataplatform/tools/review.py", "workloads/etl/schema.py", "workloads/etl/vectorized.py",
                 "workloads/etl/checkpoint.py", "workloads/etl/pipeline.py"}
    expected |= {str(p.relative_to(REPO)) for p in (REPO / "workloads" / "launcher").glob("*.py") if p.name != "__init__.py"}
    assert expected <= modules, sorted(expected - modules)


def _test_exists(nodeid: str) -> bool:
    path, _, name = nodeid.partition("::")
    tree = ast.parse((REPO / path).read_text())
    return any(isinstance(n, ast.FunctionDef) and n.name == name.split("[")[0] for n in tree.body)


@pytest.mark.parametrize("hand", CONFIG.hand_mutants, ids=[h.name for h in CONFIG.hand_mutants])
def test_each_hand_mutant_still_applies_and_names_a_test(hand):
    """`make mutation HAND=1` applies each; here only that it still can (its code is there once) and its test exists."""
    text = (REPO / hand.file).read_text()
    for old, new in zip(hand.old, hand.new, strict=True):
        assert text.count(old) == 1, f"{hand.name}: {old!r} occurs {text.count(old)} times in {hand.file}"
        assert old != new
    assert _test_exists(hand.test), hand.test
    assert (REPO / hand.python).parent.parent.name == ".venv"


def test_every_equivalent_has_a_reason():
    for e in CONFIG.equivalents:
        assert e.reason.strip() and e.operator.startswith("core/"), e


def test_statement_spans_cover_multi_line_statements_and_headers_only():
    source = "x = f(\n    1,\n    2)\nif (a and\n        b):\n    y = 3\n@deco(\n    4)\ndef g(z=5):\n    return z\n"
    spans = mutation.statement_spans(source)
    assert [spans[n] for n in (1, 2, 3)] == [(1, 3)] * 3
    assert spans[4] == spans[5] == (4, 5) and spans[6] == (6, 6)
    assert spans[7] == spans[8] == spans[9] == (7, 9) and spans[10] == (10, 10)


def test_annotations_are_equivalent_only_under_future_annotations():
    with_future = "from __future__ import annotations\n\ndef f(a: int | None = 1) -> str | None:\n    return a | 2\n"
    spans = mutation.annotation_spans(with_future)
    assert spans == [((3, 9), (3, 19)), ((3, 28), (3, 38))]
    assert mutation.annotation_spans(with_future.split("\n", 2)[2]) == []


def _mutant(line: int, column: int = 4, operator: str = "core/NumberReplacer", source: str = "x = 1") -> Mutant:
    return Mutant("m.py", operator, 0, line, column, source)


def test_equivalents_match_module_line_and_operator_and_report_stale_entries():
    mutants = [_mutant(1), _mutant(2, operator="core/AddNot", source="if a:"), _mutant(3, source="y = 2")]
    listed = [Equivalent("m.py", "x = 1", "core/Number*", "why"), Equivalent("m.py", "if a:", "core/ReplaceTrueWithFalse", "no"),
              Equivalent("m.py", "gone = 1", "core/AddNot", "stale")]
    stale = mutation.match_equivalents(mutants, listed, {"m.py": "x = 1\nif a:\n    y = 2\n"})
    assert [(m.status, m.reason) for m in mutants] == [("equivalent", "why"), ("pending", ""), ("pending", "")]
    assert stale == listed[1:]


def test_a_mutant_runs_the_tests_that_executed_its_statement_fastest_first():
    group = Group("g", ".venv/bin/python", ("t",), ("m.py",), exclude_tests=("t::excluded",), max_test_seconds=2.0)
    data = {"lines": {"m.py": {1: ["t::b", "t::a"], 2: ["t::slow", "t::excluded", "t::failed"], 5: ["<import>"]}},
            "tests": {"t::a": {"seconds": 0.2, "passed": True}, "t::b": {"seconds": 0.1, "passed": True},
                      "t::slow": {"seconds": 9.0, "passed": True}, "t::excluded": {"seconds": 0.1, "passed": True},
                      "t::failed": {"seconds": 0.1, "passed": False}, "t::c": {"seconds": 0.3, "passed": True}}}
    spans = {1: (1, 2), 2: (1, 2), 5: (5, 5)}
    assert mutation.select_tests(group, data, _mutant(1), spans) == ["t::b", "t::a"]
    assert mutation.select_tests(group, data, _mutant(5), spans) == ["t::b", "t::a", "t::c"]  # module level: every test
    assert mutation.select_tests(group, data, _mutant(7), {}) == []  # no test executes it


def test_the_score_counts_untested_mutants_as_survivors_and_leaves_out_equivalents():
    mutants = [_mutant(n) for n in range(7)]
    for m, status in zip(mutants, ["killed"] * 4 + ["survived", "no-tests", "equivalent"]):
        m.status = status
    assert mutation.summarize(mutants) == {"m.py": {"killed": 4, "survived": 1, "no_tests": 1, "equivalent": 1, "error": 0,
                                                    "non_equivalent": 6, "score": 66.7}}


def test_the_markdown_table_is_what_the_readme_check_reads():
    summary = {"m.py": {"killed": 4, "survived": 1, "no_tests": 1, "equivalent": 1, "error": 0, "non_equivalent": 6, "score": 66.7}}
    assert mutation.markdown_table(summary).splitlines()[2] == "| `m.py` | 4 / 6 | 66.7 % | 1 | 1 | 1 |"


def test_the_hand_mutant_table_names_the_killing_test():
    hand = [{"name": "cap n > cap -> n >= cap", "file": "g.py", "line": 3, "test": "t.py::test_cap", "status": "killed"}]
    assert mutation.hand_table(hand).splitlines()[2] == "| cap n > cap -> n >= cap | `g.py:3` | `t.py::test_cap` | killed |"


def test_the_readme_names_the_test_that_kills_each_hand_mutant():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("#### Mutation testing"):]
    for hand in CONFIG.hand_mutants:
        assert f"| {hand.name} | `{hand.file}:" in section and f"| `{hand.test}` | killed |" in section, hand.name


def test_the_readme_states_a_score_for_every_mutated_module():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("#### Mutation testing"):]
    for module in (m for g in CONFIG.groups for m in g.modules):
        assert re.search(rf"^\| `{re.escape(module)}` \| \d+ / \d+ \| \d+(\.\d)? % \|", section, re.M), module


def test_survivors_mode_skips_only_what_the_previous_run_killed_on_the_same_line():
    """`--survivors` re-runs the last survivors, and everything the last run did not kill as it reads now:
    a mutant of another module, or of a line that changed since, runs again (it was once credited as killed)."""
    def mutant(line: int, source: str, module: str = "m.py") -> Mutant:
        return Mutant(module, "core/NumberReplacer", 0, line, 4, source)

    killed, survivor, edited, unseen, other = (mutant(1, "x = 1"), mutant(2, "y = 2"), mutant(3, "z = 3 + 1"), mutant(4, "w = 4"),
                                               mutant(1, "x = 1", module="other.py"))
    previous = {"mutants": [{"id": killed.id, "status": "killed", "source": "x = 1"},
                            {"id": survivor.id, "status": "survived", "source": "y = 2"},
                            {"id": edited.id, "status": "killed", "source": "z = 3"}]}
    assert mutation.carry_over_kills([killed, survivor, edited, unseen, other], previous) == [survivor, edited, unseen, other]
    assert (killed.status, killed.killed_by) == ("killed", "previous run")
    assert [m.status for m in (survivor, edited, unseen, other)] == ["pending"] * 4
