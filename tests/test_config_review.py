"""Review fixes of the config loader: the rules relating sections (ml:, slo:) are reported in the
same pass as an unrelated type error, each at its own line."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataplatform.config import ConfigError, load_environment

REPO = Path(__file__).resolve().parent.parent


def _line(text: str, needle: str) -> int:
    return next(i for i, row in enumerate(text.splitlines(), 1) if needle in row)


def test_a_bad_ml_label_and_an_unrelated_type_error_are_both_reported(tmp_path):
    text = (REPO / "environments" / "dev.yaml").read_text()
    assert text.count("label: amount") == 1 and text.count("launcher_max_instances: 2") == 1
    text = text.replace("label: amount", "label: amout").replace("launcher_max_instances: 2", "launcher_max_instances: three")
    path = tmp_path / "dev.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_environment(path)
    assert info.value.problems == [
        f"{path}:{_line(text, 'launcher_max_instances: three')}: processing.launcher_max_instances: "
        "Input should be a valid integer (got 'three')",
        f"{path}:{_line(text, 'label: amout')}: ml.models[0].label: 'amout' is not a column of pipeline 'orders' "
        "(columns: order_id, customer_id, amount, quantity, ordered_at)",
    ]


def test_the_ml_rules_wait_for_the_pipelines_they_read(tmp_path):
    """A pipeline that failed validation is reported once; no rule guesses at its columns."""
    text = (REPO / "environments" / "dev.yaml").read_text().replace("label: amount", "label: amout")
    text = text.replace("launcher_max_instances: 2", "launcher_max_instances: three")
    assert text.count("{name: amount, type: NUMERIC") == 1
    text = text.replace("{name: amount, type: NUMERIC", "{name: amount, type: NUMBERS")
    path = tmp_path / "dev.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_environment(path)
    wheres = [p.split(": ")[1] for p in info.value.problems]
    assert "processing.launcher_max_instances" in wheres and not any(w.startswith("ml.") for w in wheres), info.value.problems


def test_a_pipeline_list_that_failed_itself_is_not_read_by_the_ml_rules():
    import yaml

    from dataplatform.config import parse_environment

    data = yaml.safe_load((REPO / "environments" / "dev.yaml").read_text())
    data["pipelines"].append(dict(data["pipelines"][0]))
    data["ml"]["models"][0]["label"] = "amout"
    with pytest.raises(ConfigError) as info:
        parse_environment(data, "dev.yaml", expected_name="dev")
    assert info.value.problems == ["dev.yaml:1: pipelines: pipeline names must be unique; repeated: orders"]
