"""The README's configuration reference is generated from the models and must match them."""

from pathlib import Path

from dataplatform.config_reference import END, SCHEMA_COMMENT, SCHEMA_PATH, START, json_schema, reference
from tests.support import ENVIRONMENTS

README = Path(__file__).resolve().parent.parent / "README.md"


def test_config_reference_is_in_sync():
    text = README.read_text()
    current = text[text.index(START): text.index(END) + len(END)]
    assert current == reference(), "run `make docs` to regenerate the configuration reference"


def test_readme_names_the_two_commands():
    text = README.read_text()
    assert "make synth" in text and "make test" in text


def test_json_schema_is_in_sync():
    assert SCHEMA_PATH.read_text() == json_schema(), "run `make docs` to regenerate environments/environment.schema.json"


def test_every_environment_file_names_the_schema_for_editors():
    for path in sorted(ENVIRONMENTS.glob("*.yaml")):
        assert path.read_text().splitlines()[0] == SCHEMA_COMMENT, f"{path.name}: first line must be {SCHEMA_COMMENT!r}"


def test_readme_counts_the_guardrail_rules_there_are():
    import collections
    import re

    from dataplatform.guardrails import RULES

    text = README.read_text()
    stated = re.search(r"guardrails\*\* \(`dataplatform/guardrails/`\): (\d+) rules \((\d+) errors, (\d+) warnings\)", text)
    assert stated, "README: the guardrails paragraph states '<n> rules (<e> errors, <w> warnings)'"
    severities = collections.Counter(r.severity.name for r in RULES)
    assert tuple(map(int, stated.groups())) == (len(RULES), severities["ERROR"], severities["WARNING"])
