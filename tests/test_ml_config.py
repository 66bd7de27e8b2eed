"""`ml:` and `slo:` in the environment file: the feature/label/key contract against the pipeline
schema (a wrong column is one `file:line: field: problem` line), every validator's boundary, and
the sla_tier defaults of the service levels."""

from __future__ import annotations

import re
from copy import deepcopy

import pytest

from dataplatform.config import ConfigError, load_environment, parse_environment
from dataplatform.cron import max_gap_minutes as cron_max_gap_minutes
from tests.support import ENVIRONMENTS, environment_data, line_of, problems

# The shipped dev and prod files by name: both ship a model on orders, on the standard and high tiers.
DEV = environment_data("dev")
PROD = environment_data("prod")


def model(**changes) -> dict:
    return {**DEV["ml"]["models"][0], **changes}


def env_with(base: dict = DEV, **ml_model_changes) -> dict:
    data = deepcopy(base)
    data["ml"]["models"][0].update(ml_model_changes)
    return data


def test_dev_and_prod_declare_a_model_on_orders():
    for data in (DEV, PROD):
        env = parse_environment(data, "x.yaml", expected_name=data["name"])
        assert [(m.name, m.pipeline) for m in env.ml.models] == [("order_amount", "orders")]


def test_wrong_column_is_one_error_with_file_and_line(tmp_path):
    text = (ENVIRONMENTS / "dev.yaml").read_text().replace(
        "features: [customer_id, quantity, ordered_at]", "features: [customer_id, qty, ordered_at]")
    path = tmp_path / "dev.yaml"
    path.write_text(text)
    line = line_of(text, "qty")
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}:{line}: ml.models") as info:
        load_environment(path)
    assert info.value.problems == [
        f"{path}:{line}: ml.models[0].features[1]: 'qty' is not a column of pipeline 'orders' "
        "(columns: order_id, customer_id, amount, quantity, ordered_at)"]


@pytest.mark.parametrize("changes, field, message", [
    ({"pipeline": "shipments"}, "ml.models[0].pipeline", "no pipeline named 'shipments'"),
    ({"label": "amout"}, "ml.models[0].label", "'amout' is not a column"),
    ({"label": "customer_id", "features": ["quantity"]}, "ml.models[0].label", "LINEAR_REG predicts a number; 'customer_id' is STRING"),
    ({"model_type": "BOOSTED_TREE_CLASSIFIER", "label": "ordered_at", "features": ["quantity"]}, "ml.models[0].label", "predicts a class"),
    ({"key": "quantity", "features": ["customer_id"]}, "ml.models[0].key", "is NULLABLE"),
    ({"key": "nope"}, "ml.models[0].key", "'nope' is not a column"),
    ({"features": ["amount", "quantity"]}, "ml.models[0].features[0]", "is the label"),
    ({"features": ["order_id"]}, "ml.models[0].features[0]", "is the key"),
    ({"predictions_table": "orders"}, "ml.models[0].predictions_table", "already a pipeline table"),
])
def test_contract_errors_name_the_field(changes, field, message):
    (problem,) = problems(env_with(**changes))
    assert problem.startswith(f"environments/dev.yaml:1: {field}: ") and message in problem  # parsed data: no lines, line 1


def test_classifier_on_a_class_label_passes():
    data = env_with(model_type="LOGISTIC_REG", label="customer_id", features=["amount", "quantity"])
    assert parse_environment(data, "x.yaml", expected_name="dev").ml.models[0].regressor is False


def test_managed_profile_needs_the_data_scientists_group():
    data = deepcopy(PROD)
    del data["ml"]["data_scientists_group"]
    assert problems(data) == ["environments/prod.yaml:1: ml.data_scientists_group: required by the managed profile (who may use the Workbench instance)"]


@pytest.mark.parametrize("field, ok, bad", [
    ("max_iterations", 100, 101), ("max_iterations", 1, 0),
    ("max_gb_billed", 10000, 10001), ("max_gb_billed", 1, 0),
    ("lookback_days", 30, 31), ("lookback_days", 1, 0),
    ("min_quality", 1.0, 1.01), ("min_quality", 0.0, -0.01),
    ("retrain_schedule", "59 23 * * 6", "60 23 * * 6"), ("retrain_schedule", "0 23 * * 0,6", "0 24 * * *"),
    ("retrain_schedule", "0 4 * * *", "*/5 4 * * *"),
    ("name", "m" * 30, "m" * 31),
])
def test_model_field_boundaries(field, ok, bad):
    parse_environment(env_with(**{field: ok}), "x.yaml", expected_name="dev")
    (problem,) = problems(env_with(**{field: bad}))
    assert f"ml.models[0].{field}:" in problem


@pytest.mark.parametrize("field, ok, bad", [("idle_shutdown_minutes", 10, 9), ("idle_shutdown_minutes", 1440, 1441)])
def test_workbench_boundaries(field, ok, bad):
    data = deepcopy(PROD)
    data["ml"]["workbench"][field] = ok
    parse_environment(data, "x.yaml", expected_name="prod")
    data["ml"]["workbench"][field] = bad
    (problem,) = problems(data)
    assert f"ml.workbench.{field}:" in problem


# ---------------------------------------------------------------- service levels


def levels(data: dict) -> dict:
    env = parse_environment(data, "x.yaml", expected_name=data["name"])
    return {p.name: env.service_level(p) for p in env.pipelines}


def test_tier_defaults():
    dev, prod = levels(DEV)["orders"], levels(PROD)
    assert (dev.success_goal, dev.freshness_goal) == (0.95, 0.95)  # standard
    assert (prod["orders"].success_goal, prod["orders"].freshness_goal) == (0.99, 0.99)  # high
    assert dev.freshness_minutes == 2 * 30 and prod["orders"].freshness_minutes == 2 * 45  # arrival: run + follow-up run
    assert prod["customers"].freshness_minutes == 24 * 60 + 60  # scheduled daily: the wait for the next run + its runtime
    assert dev.alert_after_hours_without_success == 2 + 3  # ceil((60 min gap + 30 min run) / 60) + 3 h standard grace
    assert prod["orders"].alert_after_hours_without_success == 2 + 1  # ceil((60 + 45) / 60) + 1 h high grace
    assert prod["customers"].alert_after_hours_without_success == 25  # capped at the 25 h an alert can align over


def test_explicit_slo_wins():
    data = deepcopy(DEV)
    data["pipelines"][0]["slo"] = {"success_goal": 0.999, "freshness_minutes": 15, "alert_after_hours_without_success": 0}
    orders = levels(data)["orders"]
    assert (orders.success_goal, orders.freshness_goal, orders.freshness_minutes, orders.alert_after_hours_without_success) == (0.999, 0.999, 15, 0)


@pytest.mark.parametrize("field, ok, bad", [
    ("success_goal", 0.999, 1.0), ("freshness_goal", 0.999, 0.9991), ("success_goal", 0.51, 0.5),
    ("freshness_minutes", 5, 4), ("freshness_minutes", 10080, 10081),
    ("alert_after_hours_without_success", 25, 26), ("alert_after_hours_without_success", 0, -1),
])
def test_slo_boundaries(field, ok, bad):
    data = deepcopy(DEV)
    data["pipelines"][0]["slo"] = {field: ok}
    parse_environment(data, "x.yaml", expected_name="dev")
    data["pipelines"][0]["slo"] = {field: bad}
    (problem,) = problems(data)
    assert f"pipelines[0].slo.{field}:" in problem


def test_weekly_scheduled_pipeline_must_choose_its_freshness_alert():
    data = deepcopy(DEV)
    data["pipelines"][0].update(trigger="scheduled", schedule="15 3 * * 1")
    (problem,) = problems(data)
    assert "pipelines[0].slo.alert_after_hours_without_success: schedule '15 3 * * 1' fires less often than daily" in problem
    data["pipelines"][0]["slo"] = {"alert_after_hours_without_success": 0}
    assert levels(data)["orders"].alert_after_hours_without_success == 0


@pytest.mark.parametrize("cron, gap", [("15 * * * *", 60), ("0 3 * * *", 1440), ("*/15 * * * *", 15), ("0 8,20 * * *", 720),
                                       ("30 9-17 * * *", 16 * 60), ("0 3 * * 1", None), ("0 3 1 * *", None),
                                       ("*/7 * * * *", 7), ("59 23 * * *", 1440), ("0,59 0 * * *", 1381), ("nonsense", None)])
def test_cron_gap(cron, gap):
    assert cron_max_gap_minutes(cron) == gap


def test_a_weekly_schedule_waits_up_to_a_week_for_freshness():
    """A schedule without a daily gap (weekly) counts a week plus the run, capped at the 7 days an SLO can measure."""
    data = deepcopy(DEV)
    data["pipelines"][0].update(trigger="scheduled", schedule="15 3 * * 1", max_runtime_minutes=30)
    data["pipelines"][0]["slo"] = {"alert_after_hours_without_success": 0}
    assert levels(data)["orders"].freshness_minutes == 10080
    data["pipelines"][0]["max_runtime_minutes"] = 5  # the shortest run: a week + 5 min is still capped at the week
    assert levels(data)["orders"].freshness_minutes == 10080


@pytest.mark.parametrize("runtime, tier, hours", [(60, "high", 2 + 1), (61, "high", 3 + 1), (119, "standard", 3 + 3),
                                                  (120, "standard", 3 + 3), (121, "standard", 4 + 3)])
def test_no_success_alert_rounds_the_wait_up_to_whole_hours(runtime, tier, hours):
    """An hourly run waits up to 60 min + its runtime: ceil(wait / 60 min) hours, plus the tier's grace."""
    data = deepcopy(PROD if tier == "high" else DEV)
    assert data["sla_tier"] == tier
    data["pipelines"][0].update(trigger="scheduled", schedule="0 * * * *", max_runtime_minutes=runtime)
    data["pipelines"][0].pop("slo", None)
    assert levels(data)["orders"].alert_after_hours_without_success == hours


def test_every_model_is_checked_after_one_names_no_pipeline():
    data = deepcopy(DEV)
    data["ml"]["models"] = [model(name="first", pipeline="nope", predictions_table="first_predictions"),
                            model(name="second", label="nope", predictions_table="second_predictions")]
    found = problems(data)
    assert [p.split(": ", 2)[1] for p in found] == ["ml.models[0].pipeline", "ml.models[1].label"], found


# ---------------------------------------------------------------- ml rules and the other sections, in one pass

def test_a_bad_ml_label_and_an_unrelated_type_error_are_both_reported(tmp_path):
    text = (ENVIRONMENTS / "dev.yaml").read_text()
    assert text.count("label: amount") == 1 and text.count("launcher_max_instances: 2") == 1
    text = text.replace("label: amount", "label: amout").replace("launcher_max_instances: 2", "launcher_max_instances: three")
    path = tmp_path / "dev.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_environment(path)
    assert info.value.problems == [
        f"{path}:{line_of(text, 'launcher_max_instances: three')}: processing.launcher_max_instances: "
        "Input should be a valid integer (got 'three')",
        f"{path}:{line_of(text, 'label: amout')}: ml.models[0].label: 'amout' is not a column of pipeline 'orders' "
        "(columns: order_id, customer_id, amount, quantity, ordered_at)",
    ]


def test_the_ml_rules_wait_for_the_pipelines_they_read(tmp_path):
    """A pipeline that failed validation is reported once; no rule guesses at its columns."""
    text = (ENVIRONMENTS / "dev.yaml").read_text().replace("label: amount", "label: amout")
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

    data = yaml.safe_load((ENVIRONMENTS / "dev.yaml").read_text())
    data["pipelines"].append(dict(data["pipelines"][0]))
    data["ml"]["models"][0]["label"] = "amout"
    with pytest.raises(ConfigError) as info:
        parse_environment(data, "dev.yaml", expected_name="dev")
    assert info.value.problems == ["dev.yaml:1: pipelines: pipeline names must be unique; repeated: orders"]
