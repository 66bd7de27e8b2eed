"""Config fields of the day-one fixes: each validated at config time with one clear line, boundaries
included (at the limit passes, one past fails)."""

from __future__ import annotations


import pytest

from dataplatform.config import maintenance_days_per_week, parse_environment
from tests.support import problem
from tests.test_config import BASE, DELETE, NAME, SOURCE, _set

DEV = _set(BASE, "profile", "lean")  # a shipped file (derived from environments/) on the lean profile

PROD_LIKE = _set(_set(_set(_set(DEV, "profile", "managed"), "sla_tier", "high"), "storage.dual_region", "EUR4"), "cicd.promotion", "approval")
PROD_LIKE = _set(PROD_LIKE, "analytics.worker_machine_type", "n1-standard-8")
if "ml" in DEV:  # the managed profile gives the data scientists a Workbench instance
    PROD_LIKE = _set(PROD_LIKE, "ml.data_scientists_group", "data-science@example.com")


def ok(data: dict):
    return parse_environment(data, SOURCE, expected_name=NAME)


@pytest.mark.parametrize("path, value, expected", [
    ("github.repository_id", DELETE, "github.repository_id: required, but not set"),
    ("github.owner_id", 0, "github.owner_id: Input should be greater than or equal to 1"),
    ("analytics.idle_stop_minutes", 9, "analytics.idle_stop_minutes: Input should be greater than or equal to 10"),
    ("analytics.idle_stop_minutes", 20161, "analytics.idle_stop_minutes: Input should be less than or equal to 20160"),
    ("analytics.idle_delete_minutes", 30, "analytics.idle_delete_minutes: unknown setting (did you mean 'idle_stop_minutes'?)"),
    ("network.flow_log_interval", "INTERVAL_2_MIN", "network.flow_log_interval: Input should be"),
    ("orchestration.composer", {"maintenance_hours": 3}, "orchestration.composer.maintenance_hours: Input should be greater than or equal to 4"),
    ("pipelines[0].partition_by", "amount", "pipelines[0]: partition_by 'amount' is NUMERIC"),
    ("pipelines[0].partition_by", "nope", "pipelines[0]: partition_by 'nope' is not a column"),
    ("pipelines[0].cluster_by", ["order_id", "customer_id", "amount", "quantity", "ordered_at"],
     "pipelines[0].cluster_by: List should have at most 4 items"),
])
def test_bad_day_one_fields_give_one_clear_line(path, value, expected):
    assert expected in problem(_set(DEV, path, value))


@pytest.mark.parametrize("minutes", [10, 20160])
def test_idle_stop_at_the_dataproc_limits_passes(minutes):
    assert ok(_set(DEV, "analytics.idle_stop_minutes", minutes)).analytics.idle_stop_minutes == minutes


@pytest.mark.parametrize("hours, recurrence, fine", [
    (6, "FREQ=WEEKLY;BYDAY=SA,SU", True),  # 12 h: at the limit
    (5, "FREQ=WEEKLY;BYDAY=SA,SU", False),  # 10 h
    (4, "FREQ=WEEKLY;BYDAY=SA,SU", False),  # the 8 h the platform used to deploy
    (4, "FREQ=WEEKLY;BYDAY=FR,SA,SU", True),
    (4, "FREQ=DAILY", True),
    (6, "FREQ=WEEKLY;BYDAY=SA,SA", False),  # a day twice
])
def test_composer_maintenance_adds_up_to_12_hours(hours, recurrence, fine):
    data = _set(_set(DEV, "orchestration.composer", {"maintenance_hours": hours}), "orchestration.composer.maintenance_recurrence", recurrence)
    if fine:
        assert ok(data).orchestration.composer.maintenance_hours == hours
    else:
        assert "orchestration.composer: maintenance" in problem(data)


@pytest.mark.parametrize("rrule, days", [("FREQ=DAILY", 7), ("FREQ=WEEKLY;BYDAY=MO", 1), ("freq=weekly;byday=sa,su", 2),
                                         ("FREQ=WEEKLY", None), ("FREQ=DAILY;BYHOUR=2", None), ("FREQ=WEEKLY;BYDAY=XX", None)])
def test_maintenance_recurrence_parsing(rrule, days):
    assert maintenance_days_per_week(rrule) == days


def test_gpus_need_n1_workers_on_the_managed_profile():
    assert "GPUs attach to N1 machine types only" in problem(_set(PROD_LIKE, "analytics.worker_machine_type", "n2-standard-8"))
    assert ok(PROD_LIKE).analytics.effective_worker_machine_type == "n1-standard-8"
    assert ok(_set(_set(PROD_LIKE, "analytics.worker_machine_type", "n2-standard-8"), "analytics.gpu_count", 0))
    lean = ok(_set(DEV, "analytics.machine_type", "n2-standard-4")).analytics
    assert lean.effective_worker_machine_type == "n2-standard-4", "lean: no GPUs, any machine"


def test_high_sla_promotes_deliberately():
    assert "sla_tier high needs cicd.promotion: approval" in problem(_set(PROD_LIKE, "cicd.promotion", "automatic"))


def test_partitioning_on_a_date_column_cannot_be_hourly():
    data = _set(DEV, "pipelines[0].schema", DEV["pipelines"][0]["schema"] + [{"name": "day", "type": "DATE"}])
    assert ok(_set(_set(data, "pipelines[0].partition_by", "day"), "pipelines[0].partition_granularity", "DAY"))
    assert "HOUR partitions need a TIMESTAMP" in problem(_set(_set(data, "pipelines[0].partition_by", "day"),
                                                              "pipelines[0].partition_granularity", "HOUR"))


def test_four_cluster_columns_pass_and_float_never():
    four = ["order_id", "customer_id", "amount", "quantity"]
    assert ok(_set(DEV, "pipelines[0].cluster_by", four)).pipelines[0].cluster_by == four
    data = _set(DEV, "pipelines[0].schema", DEV["pipelines"][0]["schema"] + [{"name": "score", "type": "FLOAT"}])
    assert "cluster_by 'score' is FLOAT" in problem(_set(data, "pipelines[0].cluster_by", ["score"]))


def test_bucket_names_carry_the_project_number():
    env = ok(DEV)
    assert env.namer.bucket("landing") == f"{DEV['name_prefix']}-{NAME}-landing-{DEV['project_number']}"


@pytest.mark.parametrize("component, fine", [("c" * 41, True), ("c" * 42, False)])
def test_bucket_names_are_checked_against_gcs_rules(component, fine):
    """acme-dev-<component>-<12 digits>: 63 characters pass, 64 fail (config probes every derived name)."""
    from dataplatform.naming import InvalidName, Namer

    namer = Namer("acme", "dev", unique="123456789012")
    if fine:
        assert len(namer.bucket(component)) == 63
    else:
        with pytest.raises(InvalidName, match="bucket name .* is invalid"):
            namer.bucket(component)


def test_bucket_names_stay_within_limits_for_any_valid_prefix_and_number():
    """Service account ids cap prefix-env at 17 characters (prefix 13 with env "dev"), project numbers at 20 digits: the longest
    bucket (quarantine) is 49 characters, so config's probe of it always passes for valid input."""
    data = _set(_set(DEV, "project_number", "9" * 20), "name_prefix", "a" * 13)
    assert len(ok(data).namer.bucket("quarantine")) == 13 + len(f"-{NAME}-quarantine-") + 20




def test_composer_maintenance_message_names_the_sum():
    from dataplatform.config import ComposerSettings

    with pytest.raises(ValueError, match=r"maintenance windows add up to 8 h a week \(2 x 4 h\); Composer needs at least 12 h"):
        ComposerSettings(maintenance_recurrence="FREQ=WEEKLY;BYDAY=SA,SU", maintenance_hours=4)
    assert ComposerSettings(maintenance_recurrence="FREQ=WEEKLY;BYDAY=FR,SA,SU", maintenance_hours=4).maintenance_hours == 4


def test_composer_maintenance_start_is_an_rfc3339_time():
    from dataplatform.config import ComposerSettings

    with pytest.raises(ValueError, match=r"expected an RFC 3339 time such as 2026-01-01T02:00:00Z"):
        ComposerSettings(maintenance_start="02:00")
    assert ComposerSettings(maintenance_start="2026-01-01T02:00:00Z").maintenance_start == "2026-01-01T02:00:00Z"
