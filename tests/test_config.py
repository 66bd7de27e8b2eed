"""Config tier: every environment file loads; bad input is refused, every problem in one pass,
each one line `file:line: field path: what was expected`, never a traceback."""

from __future__ import annotations

import copy
import json
import re
import os
import subprocess
import sys
import typing
from enum import Enum
from pathlib import Path

import annotated_types
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from dataplatform import config_loader
from dataplatform.config import ConfigError, Environment, Pipeline, load_environment, load_environments
from dataplatform.config_loader import check_text, environment_files
from tests.support import ENVIRONMENTS, environment_names, line_of

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = sorted(ENVIRONMENTS.glob("*.yaml"))[0]  # any shipped file serves as a known-good base
BASE_TEXT = TEMPLATE.read_text()
BASE = yaml.safe_load(BASE_TEXT)
NAME = TEMPLATE.stem
SOURCE = f"environments/{NAME}.yaml"


def problems_of(text: str, expected_name: str = NAME) -> list[str]:
    env, problems, _ = check_text(text, SOURCE, expected_name)
    assert (env is None) == bool(problems)
    return problems


def dump(data) -> str:
    return yaml.safe_dump(data, sort_keys=False)


@pytest.mark.parametrize("name", environment_names())
def test_every_environment_file_loads(name):
    env = load_environment(ENVIRONMENTS / f"{name}.yaml")
    assert env.name == name


def test_the_environments_have_distinct_projects():
    envs = load_environments()
    assert len({e.project_id for e in envs}) == len({e.project_number for e in envs}) == len(envs)


# ---------------------------------------------------------------- data mutations

def _set(data: dict, path: str, value) -> dict:
    """Copy of data with the dotted/indexed path set (value DELETE removes the key)."""
    data = copy.deepcopy(data)
    *parents, last = path.replace("[", ".").replace("]", "").split(".")
    node = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    key = int(last) if last.isdigit() else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value
    return data


DELETE = object()

# (mutation path, value, the one expected line after `file:line: `)
BAD_CASES = [
    ("region", DELETE, "region: required, but not set"),
    ("project_id", "Acme_Prod", "project_id: expected a GCP project id: 6-30 chars of a-z 0-9 -, starting with a letter (got 'Acme_Prod')"),
    ("region", "europe west1", "region: expected a GCP region such as europe-west1 (got 'europe west1')"),
    ("profile", "cheap", "profile: Input should be 'lean' or 'managed' (got 'cheap')"),
    ("profile", "Managed", "profile: Input should be 'lean' or 'managed' (got 'Managed') (did you mean 'managed'?)"),
    ("name_prefix", "acme-analytics-plat", "name_prefix: gives an invalid service account name: service_account name "
     f"'acme-analytics-plat-{NAME}-orchestrator' is invalid: expected 6-30 chars of a-z 0-9 -, starting with a letter, not ending with '-'"),
    ("name_prefix", "google", f"name_prefix: gives an invalid bucket name: bucket name 'google-{NAME}-quarantine' is invalid: expected "
     "3-63 chars of a-z 0-9 - _ ., starting and ending with a letter or digit, not starting with 'goog' nor containing 'google'"),
    ("labels.owner", "Data Platform", "labels: label 'owner' value 'Data Platform': expected 0-63 chars of a-z 0-9 _ -"),
    ("labels", {"owner": "x"}, "labels: missing required label 'cost_center'"),
    ("labels.CostCenter", "x", "labels: label key 'CostCenter': expected 1-63 chars of a-z 0-9 _ -, starting with a lowercase letter"),
    ("network.subnet_cidr", "8.8.8.0/24", "network.subnet_cidr: expected a private (RFC 1918) range between /8 and /29 (got '8.8.8.0/24')"),
    ("network.subnet_cidr", "10.0.0.0/30", "network.subnet_cidr: expected a private (RFC 1918) range between /8 and /29 (got '10.0.0.0/30')"),
    ("network.subnet_cidr", "10.0.0.0/33", "network.subnet_cidr: expected an IPv4 CIDR such as 10.10.0.0/20"),
    ("storage.coldline_after_days", 30, "storage: coldline_after_days must be greater than nearline_after_days"),
    ("github.repository", "not a repo", "github.repository: expected 'owner/name' of a GitHub repository (got 'not a repo')"),
    ("alert_emails", ["nobody"], "alert_emails[0]: value is not a valid email address: An email address must have an @-sign. (got 'nobody')"),
    ("alert_emails", ["ops@localhost"], "alert_emails[0]: value is not a valid email address: The part after the @-sign is not valid. "
     "It should have a period. (got 'ops@localhost')"),
    ("operators_group", "ops@acme.test", "operators_group: value is not a valid email address: The part after the @-sign is a "
     "special-use or reserved name that cannot be used with email. (got 'ops@acme.test')"),
    ("alert_emails", [], "alert_emails: List should have at least 1 item after validation, not 0"),
    ("pipelines", [], "pipelines: List should have at least 1 item after validation, not 0"),
    ("pipelines[0].name", "Orders-2024", "pipelines[0].name: expected 1-30 chars of a-z 0-9 _, starting with a letter (got 'Orders-2024')"),
    ("pipelines[0].schedule", "hourly", "pipelines[0].schedule: expected 5 cron fields (minute hour day-of-month month day-of-week), "
     "not the shortcut 'hourly' (did you mean '0 * * * *'?) (got 'hourly')"),
    ("pipelines[0].schedule", None, "pipelines[0]: schedule is required when trigger is both"),
    ("pipelines[0].max_workers", 0, "pipelines[0].max_workers: Input should be greater than or equal to 1 (got 0)"),
    ("pipelines[0].schema[0].type", "STRNG", "pipelines[0].schema[0].type: Input should be 'STRING', 'INTEGER', 'FLOAT', 'NUMERIC', "
     "'BOOLEAN', 'TIMESTAMP' or 'DATE' (got 'STRNG') (did you mean 'STRING'?)"),
    ("pipelines[0].schema[0].min", 1, "pipelines[0].schema[0]: min/max are only allowed on numeric types, not STRING"),
    ("pipelines[0].schema[2].min", 10**7, "pipelines[0].schema[2]: min (10000000.0) must not exceed max (1000000.0)"),
    ("pipelines[0].schema", BASE["pipelines"][0]["schema"] + [{**BASE["pipelines"][0]["schema"][0], "name": BASE["pipelines"][0]["schema"][0]["name"].upper()}],
     f"pipelines[0].schema: column {BASE['pipelines'][0]['schema'][0]['name'].upper()!r} is declared twice (BigQuery names are case-insensitive)"),
    ("pipelines[0].schema[0].name", "order id", "pipelines[0].schema[0].name: expected 1-300 chars of letters, digits and _, not starting with a digit"),
    ("pipelines[0].sink", "bq", "pipelines[0].sink: unknown setting; expected one of: "
     + ", ".join(sorted(f.alias or n for n, f in Pipeline.model_fields.items()))),
    ("name", "qa", f"name: must equal the file name {NAME!r} (got 'qa')"),
]


@pytest.mark.parametrize("path,value,expected", BAD_CASES, ids=[f"{p}={v!r}"[:50] for p, v, _ in BAD_CASES])
def test_bad_config_gives_one_clear_line(path, value, expected):
    text = dump(_set(BASE, path, value))
    (line,) = problems_of(text)
    source_line, _, rest = line.partition(": ")
    assert source_line.startswith(f"{SOURCE}:") and int(source_line.rsplit(":", 1)[1]) >= 1, line
    assert rest.startswith(expected), line


# ---------------------------------------------------------------- the cases, by exact line

def test_out_of_range_cron_is_refused_at_its_line():
    text = BASE_TEXT.replace('schedule: "15 * * * *"', 'schedule: "99 * * * *"')
    assert problems_of(text) == [f"{SOURCE}:{line_of(text, 'schedule: ')}: pipelines[0].schedule: minute field '99' is out of range 0-59 "
                                 "(got '99 * * * *')"]


def test_bad_email_says_why_not_a_regex():
    text = BASE_TEXT.replace("operators_group: data-ops@acme.example", "operators_group: data-ops.acme.example")
    assert problems_of(text) == [f"{SOURCE}:{line_of(text, 'operators_group')}: operators_group: value is not a valid email address: "
                                 "An email address must have an @-sign. (got 'data-ops.acme.example')"]


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n"])
def test_empty_file_is_one_clear_line(text):
    assert problems_of(text) == [f"{SOURCE}:1: (file): is empty: an environment needs at least name, project_id, ... "
                                 "(copy one: make new-env NAME=<env> FROM=dev)"]


def test_misspelled_key_is_one_line_with_did_you_mean():
    text = BASE_TEXT.replace("\nlabels:", "\nlables:")
    assert problems_of(text) == [f"{SOURCE}:{line_of(text, 'lables:')}: lables: unknown setting (did you mean 'labels'?)"]


def test_every_problem_in_one_pass_sorted_by_line(tmp_path):
    """A bad region does not hide the cross-field check it would have stopped, nor the name checks."""
    text = (BASE_TEXT.replace("region: europe-west1", "region: europe west1").replace("sla_tier: standard", "sla_tier: high")
            .replace(f"name: {NAME}\n", "name: qa\n").replace("name_prefix: acme", "name_prefix: google")
            .replace("max_workers: 2", "max_workers: 51"))
    assert problems_of(text) == [
        f"{SOURCE}:{line_of(text, 'name: qa')}: name: must equal the file name {NAME!r} (got 'qa')",
        f"{SOURCE}:{line_of(text, 'region:')}: region: expected a GCP region such as europe-west1 (got 'europe west1')",
        f"{SOURCE}:{line_of(text, 'name_prefix')}: name_prefix: gives an invalid bucket name: bucket name 'google-qa-quarantine' is "
        "invalid: expected 3-63 chars of a-z 0-9 - _ ., starting and ending with a letter or digit, not starting with 'goog' nor "
        "containing 'google'",
        f"{SOURCE}:{line_of(text, 'sla_tier')}: sla_tier: sla_tier high needs cicd.promotion: approval (a build nobody approved never "
        "changes this environment)",
        f"{SOURCE}:{line_of(text, 'sla_tier')}: sla_tier: sla_tier high needs storage.dual_region (e.g. EUR4) for the landing bucket",
        f"{SOURCE}:{line_of(text, 'max_workers')}: pipelines[0].max_workers: Input should be less than or equal to 50 (got 51)",
    ]


def test_yml_files_are_refused_not_ignored(tmp_path):
    shutil_copy(TEMPLATE, tmp_path / TEMPLATE.name)
    shutil_copy(TEMPLATE, tmp_path / "staging.yml")
    with pytest.raises(ConfigError, match=r"staging\.yml:1: \(file\): environment files end in \.yaml") as info:
        load_environments(tmp_path)
    assert info.value.problems == [f"{tmp_path}/staging.yml:1: (file): environment files end in .yaml; rename it to staging.yaml "
                                   "(as it is, nothing reads it)"]


def shutil_copy(src: Path, dst: Path) -> None:
    dst.write_text(src.read_text())


def test_config_errors_refuse_synth_before_anything_is_built_and_stop_the_kernel(tmp_path):
    """`make check` reads YAML only (no cdktn, no provider bindings); `make synth` reads the files while
    the kernel loads the provider, and a refusal builds nothing and kills the kernel instead of waiting for it."""
    (tmp_path / f"{NAME}.yaml").write_text(BASE_TEXT.replace("profile:", "profil:"))
    probe = ("import sys, main; from dataplatform import jsii_channel; rc = main.run(); "
             "print(rc, [p.wait(timeout=10) for p in jsii_channel._kernels] == [-9] * len(jsii_channel._kernels))")
    env = {"ENVIRONMENTS_DIR": str(tmp_path), "CDKTF_OUTDIR": str(tmp_path / "out"),
           "PATH": f"{REPO / 'node_modules' / '.bin'}{os.pathsep}/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60, env=env)
    assert result.stdout.split() == ["2", "True"], result.stderr
    assert result.stderr.splitlines() == [
        f"{tmp_path}/{NAME}.yaml:{line_of(BASE_TEXT, 'profile:')}: profil: unknown setting (did you mean 'profile'?)",
        "synth: 1 problem(s) in the environment files; nothing was synthesized",
    ]
    assert not (tmp_path / "out" / "manifest.json").exists()
    # A kernel that cannot start does not hide the files' problems either.
    broken = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60,
                            env={**env, "JSII_NODE": "/bin/false"})
    assert broken.stdout.split()[0] == "2" and broken.stderr.splitlines()[-1].startswith("synth: 1 problem(s)")
    check = subprocess.run([sys.executable, "-c", "import sys; from dataplatform.config_loader import main; rc = main(sys.argv[1:]); "
                            "print(rc, any(m.split('.')[0] in ('cdktn', 'cdktn_provider_google', 'jsii') for m in sys.modules))",
                            str(tmp_path / f"{NAME}.yaml")], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert check.stdout.split() == ["2", "False"] and "Traceback" not in check.stderr
    assert check.stderr.splitlines()[-1] == "check: 1 problem(s); nothing was synthesized"


# ---------------------------------------------------------------- ten more of our own

def test_a_key_set_twice_is_refused():
    text = BASE_TEXT.replace("  owner: data-platform\n", "  owner: data-platform\n  owner: someone-else\n")
    first = line_of(text, "owner: data-platform")
    assert problems_of(text) == [f"{SOURCE}:{first + 1}: labels.owner: set twice (first on line {first}); "
                                 "YAML would silently keep only this one"]


def test_yaml_boolean_for_a_number_is_refused():
    text = BASE_TEXT.replace("max_workers: 2", "max_workers: true")
    assert problems_of(text) == [f"{SOURCE}:{line_of(text, 'max_workers')}: pipelines[0].max_workers: Input should be a valid integer "
                                 "(got true, a YAML boolean)"]


def test_camel_case_key_suggests_the_snake_case_setting():
    text = BASE_TEXT.replace("max_workers: 2", "maxWorkers: true")
    assert problems_of(text) == [f"{SOURCE}:{line_of(text, 'maxWorkers')}: pipelines[0].maxWorkers: unknown setting "
                                 "(did you mean 'max_workers'?)"]


def test_yaml_boolean_for_text_says_to_quote_it():
    text = BASE_TEXT.replace("owner: data-platform", "owner: no")
    assert problems_of(text) == [f"{SOURCE}:{line_of(text, 'owner: no')}: labels.owner: Input should be a valid string (got false: "
                                 "YAML reads yes/no/on/off/true/false as booleans; quote it to keep it as text)"]


def test_version_read_as_a_number_says_to_quote_it():
    text = BASE_TEXT.replace("airflow_version: 3.3.2", "airflow_version: 3.10")
    assert problems_of(text) == [f"{SOURCE}:{line_of(text, 'airflow_version')}: orchestration.airflow_vm.airflow_version: Input should "
                                 "be a valid string (got 3.1: YAML read it as a number; quote it to keep it as written)"]


@pytest.mark.parametrize("cron,expected", [
    ("@hourly", "expected 5 cron fields (minute hour day-of-month month day-of-week), not the shortcut '@hourly' (did you mean '0 * * * *'?)"),
    ("0 15 * * * *", "expected 5 cron fields; a 6th (seconds) field is not accepted by Cloud Scheduler (did you mean '15 * * * *'?)"),
    ("0 0 31 2 *", "'0 0 31 2 *' never fires (no date matches every field)"),
    ("0 0 L * *", "day of month field 'L': expected numbers, *, ranges (a-b), steps (/n) or lists (a,b) in 1-31"),
    ("0 24 * * *", "hour field '24' is out of range 0-23"),
    ("* * * * 8", "day of week field '8' is out of range 0-7 or SUN-SAT"),
])
def test_cron_refusals(cron, expected):
    text = BASE_TEXT.replace('schedule: "15 * * * *"', f'schedule: "{cron}"')
    assert problems_of(text) == [f"{SOURCE}:{line_of(text, 'schedule: ')}: pipelines[0].schedule: {expected} (got {cron!r})"]


BACKWARDS = "runs backwards (croniter wraps it around, classic cron refuses it); write it as a list"


@pytest.mark.parametrize("cron,expected", [
    ("5-4 * * * *", f"minute field '5-4': the range 5-4 {BACKWARDS} (did you mean '5-59,0-4 * * * *'?)"),
    ("* 22-2 * * *", f"hour field '22-2': the range 22-2 {BACKWARDS} (did you mean '* 22-23,0-2 * * *'?)"),
    ("0 0 31-1 * *", f"day of month field '31-1': the range 31-1 {BACKWARDS} (did you mean '0 0 31,1 * *'?)"),
    ("0 0 * NOV-FEB *", f"month field 'NOV-FEB': the range NOV-FEB {BACKWARDS} (did you mean '0 0 * NOV-DEC,JAN-FEB *'?)"),
    ("0 0 * * FRI-MON", f"day of week field 'FRI-MON': the range FRI-MON {BACKWARDS} (did you mean '0 0 * * FRI-SAT,SUN-MON'?)"),
    ("0 0 * * 7-1", f"day of week field '7-1': the range 7-1 {BACKWARDS} (did you mean '0 0 * * 7,0-1'?)"),
    ("1,59-0 * * * *", f"minute field '1,59-0': the range 59-0 {BACKWARDS} (did you mean '1,59,0 * * * *'?)"),
    ("50-10/5 * * * *", f"minute field '50-10/5': the range 50-10 {BACKWARDS}"),  # a step over the wrap: no obvious list
    # the range itself is rewritten in its place, not the first text that reads like it ("12-15" holds "2-1")
    ("0 12-15,2-1,20 * * *", f"hour field '12-15,2-1,20': the range 2-1 {BACKWARDS} (did you mean '0 12-15,2-23,0-1,20 * * *'?)"),
    # each added bound is spelled like the bound it extends: a name next to a name, a number next to a number
    ("0 0 * * 5-MON", f"day of week field '5-MON': the range 5-MON {BACKWARDS} (did you mean '0 0 * * 5-6,SUN-MON'?)"),
    ("0 0 * 11-FEB *", f"month field '11-FEB': the range 11-FEB {BACKWARDS} (did you mean '0 0 * 11-12,JAN-FEB *'?)"),
])
def test_backwards_ranges_are_refused_with_the_list_croniter_would_read(cron, expected):
    text = BASE_TEXT.replace('schedule: "15 * * * *"', f'schedule: "{cron}"')
    assert problems_of(text) == [f"{SOURCE}:{line_of(text, 'schedule: ')}: pipelines[0].schedule: {expected} (got {cron!r})"]


ONE_VALUE = "names one value, which croniter reads as the whole field"


@pytest.mark.parametrize("cron,expected", [
    ("5-5 * * * *", f"minute field '5-5': the range 5-5 {ONE_VALUE} (classic cron reads it as 5 alone); write the value "
                    "(did you mean '5 * * * *'?)"),
    ("3-3,5 * * * *", f"minute field '3-3,5': the range 3-3 {ONE_VALUE} (classic cron reads it as 3 alone); write the value "
                      "(did you mean '3,5 * * * *'?)"),
    ("0 0 * * SUN-SUN", f"day of week field 'SUN-SUN': the range SUN-SUN {ONE_VALUE} (classic cron reads it as SUN alone); "
                        "write the value (did you mean '0 0 * * SUN'?)"),
    # 7 and 0 are both Sunday: 7-7 and 7-0 name Sunday, which croniter reads as every day
    ("0 0 * * 7-7", f"day of week field '7-7': the range 7-7 {ONE_VALUE} (classic cron reads it as 7 alone); write the value "
                    "(did you mean '0 0 * * 7'?)"),
    ("0 0 * * 7-0", f"day of week field '7-0': the range 7-0 {ONE_VALUE} (classic cron refuses it); write the value "
                    "(did you mean '0 0 * * 7'?)"),
    ("1-1/2 * * * *", f"minute field '1-1/2': the range 1-1 {ONE_VALUE} (classic cron reads it as 1 alone); write the value"),
    # one value spelled two ways: the first spelling is kept
    ("0 0 * * SUN-0", f"day of week field 'SUN-0': the range SUN-0 {ONE_VALUE} (classic cron reads it as SUN alone); write the value "
                      "(did you mean '0 0 * * SUN'?)"),
])
def test_one_value_ranges_are_refused_with_the_value(cron, expected):
    text = BASE_TEXT.replace('schedule: "15 * * * *"', f'schedule: "{cron}"')
    assert problems_of(text) == [f"{SOURCE}:{line_of(text, 'schedule: ')}: pipelines[0].schedule: {expected} (got {cron!r})"]


@settings(max_examples=40, deadline=None)
@given(minute=st.integers(0, 59))
def test_a_one_value_range_is_what_croniter_misreads_and_the_value_is_what_classic_cron_reads(minute):
    import datetime as dt

    from croniter import croniter

    from dataplatform.cron import CronError, check

    with pytest.raises(CronError) as info:
        check(f"{minute}-{minute} * * * *")
    assert info.value.suggestion == f"{minute} * * * *"
    start = dt.datetime(2025, 1, 1)
    misread = croniter(f"{minute}-{minute} * * * *", start)
    assert [misread.get_next(dt.datetime).minute for _ in range(60)] == [*range(1, 60), 0]  # every minute
    meant = croniter(info.value.suggestion, start)
    assert {meant.get_next(dt.datetime).minute for _ in range(5)} == {minute}


@pytest.mark.parametrize("cron", ["4-5 * * * *", "0-59 * * * *", "* 0-23 * * *", "0 0 1-31 * *", "0 0 * JAN-DEC *", "0 0 * * 0-7",
                                  "0 0 * * 5-7", "0 0 * * 6-7", "0 0 * * SUN-SAT", "10-50/5 * * * *"])
def test_forward_ranges_up_to_the_field_ends_are_accepted(cron):
    assert problems_of(BASE_TEXT.replace('schedule: "15 * * * *"', f'schedule: "{cron}"')) == []


@settings(max_examples=60, deadline=None)
@given(field=st.sampled_from([(0, 59), (0, 23)]), data=st.data())
def test_the_suggested_list_fires_exactly_when_croniter_reads_the_backwards_range(field, data):
    import datetime as dt

    from croniter import croniter

    from dataplatform.cron import CronError, check

    low, high = field
    a = data.draw(st.integers(low + 1, high))
    b = data.draw(st.integers(low, a - 1))
    rng = f"{a}-{b}"
    cron = f"{rng} * * * *" if high == 59 else f"0 {rng} * * *"
    with pytest.raises(CronError) as info:
        check(cron)
    suggestion = info.value.suggestion
    assert check(suggestion) == suggestion
    start = dt.datetime(2025, 1, 1)
    original, fixed = croniter(cron, start), croniter(suggestion, start)
    assert [original.get_next(dt.datetime) for _ in range(50)] == [fixed.get_next(dt.datetime) for _ in range(50)]


@pytest.mark.parametrize("cron", ["0 23 * * *", "59 * * * *", "*/15 * * * *", "0 0 * * MON-FRI", "0 0 1 JAN,JUL *", "0 0 * * 7"])
def test_cron_at_the_limits_is_accepted(cron):
    assert problems_of(BASE_TEXT.replace('schedule: "15 * * * *"', f'schedule: "{cron}"')) == []


def test_two_documents_in_one_file_are_invalid_yaml():
    text = BASE_TEXT + "---\nname: other\n"
    assert problems_of(text) == [f"{SOURCE}:{len(BASE_TEXT.splitlines()) + 1}: (YAML): invalid YAML: but found another document (column 1)"]


def test_invalid_yaml_names_line_and_column():
    assert problems_of("name: dev\nlabels: {owner: [\n") == [
        f"{SOURCE}:3: (YAML): invalid YAML: did not find expected node content (column 1)"]


def test_a_character_yaml_refuses_has_line_one():
    """A control character stops the YAML reader before any mark exists: the file's first line is named."""
    assert problems_of("name: dev\x07\n") == [
        f"{SOURCE}:1: (YAML): invalid YAML: unacceptable character #x0007: control characters are not allowed "
        'in "<unicode string>", position 9']


def test_make_check_in_process(tmp_path, capsys):
    """config_loader.main: 0 and the valid names; 2 and one line per problem of every file (one pass), never a traceback."""
    good = tmp_path / f"{NAME}.yaml"
    good.write_text(BASE_TEXT)
    assert config_loader.main([str(good)]) == 0
    assert capsys.readouterr().out.startswith(f"check: {NAME} valid (")
    bad = tmp_path / "bad" / f"{NAME}.yaml"
    bad.parent.mkdir()
    bad.write_text(BASE_TEXT.replace("max_workers: 2", "max_workers: true").replace("owner: data-platform", "owner: no"))
    worse = tmp_path / "worse" / f"{NAME}.yaml"
    worse.parent.mkdir()
    worse.write_text("- a list\n")
    assert config_loader.main([str(bad), str(good), str(worse)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert [line.split(": ", 2)[1] for line in err[:-1]] == ["labels.owner", "pipelines[0].max_workers", "(top level)"]
    assert err[-1] == "check: 3 problem(s); nothing was synthesized"


def test_make_check_reads_its_command_line(monkeypatch, capsys, tmp_path):
    """No arguments: every shipped file; file arguments: those files only."""
    monkeypatch.setattr(sys, "argv", ["config_loader"])
    assert config_loader.main() == 0
    assert capsys.readouterr().out.startswith(f"check: {', '.join(environment_names())} valid (")
    one = tmp_path / f"{NAME}.yaml"
    one.write_text(BASE_TEXT)
    monkeypatch.setattr(sys, "argv", ["config_loader", str(one)])
    assert config_loader.main() == 0
    assert capsys.readouterr().out.startswith(f"check: {NAME} valid (")


@pytest.mark.parametrize("old, new, where, meant", [
    ("project_id:", "projectid:", "projectid", "project_id"),
    ("project_id:", "PROJECT-ID:", "PROJECT-ID", "project_id"),
    ("project_id:", "p_r_o_j_e_c_t_i_d:", "p_r_o_j_e_c_t_i_d", "project_id"),  # separators and case only
    ("  - name: orders", "  - nmae: orders", "pipelines[0].nmae", "name"),
    ("  - name: orders", "  - NAME: orders", "pipelines[0].NAME", "name"),
    ("- {name: customer_id, type: STRING", "- {nmae: customer_id, type: STRING", "pipelines[0].schema[1].nmae", "name"),
])
def test_a_misspelt_required_setting_is_one_line_at_any_depth(old, new, where, meant):
    """The unknown key and the missing setting it was meant to be are one problem, not two."""
    text = BASE_TEXT.replace(old, new, 1)
    assert problems_of(text) == [f"{SOURCE}:{line_of(text, new.strip())}: {where}: unknown setting (did you mean {meant!r}?)"]


def test_top_level_list_is_refused():
    assert problems_of("- just\n- a list\n") == [
        f"{SOURCE}:1: (top level): expected a mapping of settings (name: ..., project_id: ...), got a list"]


def test_empty_section_says_it_is_empty():
    text = re.sub(r"^github:\n(  .*\n)+", "github:\n", BASE_TEXT, flags=re.M)
    first_two = ", ".join(f"{name}: ..." for name in list(Environment.model_fields["github"].annotation.model_fields)[:2])
    assert problems_of(text) == [f"{SOURCE}:{line_of(text, 'github:')}: github: is empty; expected its settings ({first_two})"]


def test_empty_value_says_it_is_empty():
    text = BASE_TEXT.replace("region: europe-west1", "region:")
    assert problems_of(text) == [f"{SOURCE}:{line_of(text, 'region:')}: region: is empty; input should be a valid string"]


def test_unknown_nested_key_without_a_close_match_lists_the_settings():
    text = BASE_TEXT.replace("  temp_object_days: 7\n", "  zzz: 7\n")
    (line,) = problems_of(text)
    assert line == (f"{SOURCE}:{line_of(text, 'zzz')}: storage.zzz: unknown setting; expected one of: coldline_after_days, "
                    "dual_region, nearline_after_days, noncurrent_version_days, soft_delete_days, temp_object_days")


def test_file_that_is_not_utf8_is_one_line(tmp_path):
    path = tmp_path / f"{NAME}.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8 text") as info:
        load_environment(path)
    assert info.value.problems == [f"{path}:1: (file): not UTF-8 text (invalid start byte at byte 6)"]


@pytest.mark.parametrize("key", ["project_id", "project_number"])
def test_two_environments_on_one_project_are_refused(tmp_path, key):
    shutil_copy(TEMPLATE, tmp_path / f"{NAME}.yaml")
    other = BASE_TEXT.replace(f"name: {NAME}\n", "name: qa\n")
    other = other.replace(BASE["project_id"], "acme-data-qa") if key == "project_number" else other.replace(
        f'project_number: "{BASE["project_number"]}"', 'project_number: "999999999999"')
    (tmp_path / "qa.yaml").write_text(other)
    with pytest.raises(ConfigError, match=f"{key}: .* is already used by") as info:
        load_environments(tmp_path)
    first, second = sorted([f"{tmp_path}/{NAME}.yaml", f"{tmp_path}/qa.yaml"])
    assert info.value.problems == [f"{second}:{line_of(other, key)}: {key}: {str(BASE[key])!r} is already used by {first}; "
                                   "one project per environment"]


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"^.*staging\.yaml:1: \(file\): cannot read: No such file or directory$"):
        load_environment(tmp_path / "staging.yaml")


def test_no_environment_files_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r":1: \(directory\): no environment files \(\*\.yaml\) found$"):
        load_environments(tmp_path)


def test_unknown_environment_in_the_selection_suggests_one():
    import main

    envs = load_environments()
    with pytest.raises(ConfigError, match=rf"^DP_ENVIRONMENTS: no environment '{NAME}x' \(did you mean '{NAME}'\?\)$"):
        main.select(envs, f"{NAME}x")
    assert [e.name for e in main.select(envs, f" {NAME} ")] == [NAME]
    assert main.select(envs, "") == envs


# ---------------------------------------------------------------- boundaries of every numeric limit

def _model_paths(model: type[BaseModel] = Environment, data=BASE, prefix: str = ""):
    """(model class, dotted path of one instance in BASE) for every model the file holds."""
    yield model, prefix
    for name, field in model.model_fields.items():
        key = field.alias or name
        inner = config_loader._unwrap(field.annotation)
        here = f"{prefix}.{key}" if prefix else key
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            yield from _model_paths(inner, (data or {}).get(key) or {}, here)
        elif typing.get_origin(inner) is list:
            item = config_loader._unwrap(typing.get_args(inner)[0])
            if isinstance(item, type) and issubclass(item, BaseModel):
                entries = (data or {}).get(key) or [{}]
                index = next((i for i, e in enumerate(entries) if "max" in e), 0)  # a numeric column, if any
                yield from _model_paths(item, entries[index], f"{here}[{index}]")


def _limits():
    """(field path, value at the limit, value one past it) for every ge/gt/le/lt constraint of every model."""
    for model, prefix in _model_paths():
        for name, field in model.model_fields.items():
            kind = config_loader._unwrap(field.annotation)
            if kind not in (int, float):
                continue
            step = 1 if kind is int else 1e-6
            path = f"{prefix}.{field.alias or name}" if prefix else (field.alias or name)
            for c in field.metadata:
                if isinstance(c, annotated_types.Ge):
                    yield path, c.ge, c.ge - step
                elif isinstance(c, annotated_types.Le):
                    yield path, c.le, c.le + step
                elif isinstance(c, annotated_types.Gt):
                    yield path, c.gt + step, c.gt
                elif isinstance(c, annotated_types.Lt):
                    yield path, c.lt - step, c.lt


LIMITS = sorted(set(_limits()))


def test_the_limits_cover_the_documented_caps():
    paths = {p for p, _, _ in LIMITS}
    assert {"pipelines[0].max_workers", "orchestration.composer.max_workers", "processing.launcher_max_instances",
            "storage.soft_delete_days", "analytics.idle_stop_minutes", "network.flow_log_sampling"} <= paths
    assert ("pipelines[0].max_workers", 50, 51) in LIMITS and ("pipelines[0].max_workers", 1, 0) in LIMITS


def _where(line: str) -> str:
    return line.split(": ", 2)[1]


@pytest.mark.parametrize("path,ok,bad", LIMITS, ids=[f"{p}:{o}/{b}" for p, o, b in LIMITS])
def test_at_the_limit_passes_one_past_is_refused(path, ok, bad):
    at_limit = problems_of(dump(_set(BASE, path, ok)))  # (a cross-field cap may still object to the combination)
    assert [p for p in at_limit if _where(p) == path and "Input should be" in p] == []
    past = problems_of(dump(_set(BASE, path, bad)))
    assert [_where(p) for p in past if "Input should be" in p] == [path], past


@pytest.mark.parametrize("nearline,coldline,refused", [(90, 91, False), (90, 90, True), (90, 89, True)])
def test_coldline_must_come_after_nearline(nearline, coldline, refused):
    data = _set(_set(BASE, "storage.nearline_after_days", nearline), "storage.coldline_after_days", coldline)
    expected = ["storage: coldline_after_days must be greater than nearline_after_days"] if refused else []
    assert [p.split(": ", 1)[1] for p in problems_of(dump(data))] == expected


@pytest.mark.parametrize("secondary,refused", [(46, False), (47, True)])
def test_dataproc_worker_total_is_capped_at_fifty(secondary, refused):
    data = _set(_set(BASE, "analytics.max_primary_workers", 4), "analytics.max_secondary_workers", secondary)
    data = _set(data, "analytics.primary_workers", 2)
    expected = ["analytics.max_primary_workers: analytics.max_primary_workers + max_secondary_workers must not exceed 50 "
                "(guardrail cost cap)"] if refused else []
    assert [p.split(": ", 1)[1] for p in problems_of(dump(data))] == expected


@pytest.mark.parametrize("field,ok,bad", [
    ("name", "a" * 10, "a" * 11), ("pipelines[0].name", "p" * 30, "p" * 31), ("pipelines[0].schema[0].name", "c" * 300, "c" * 301),
])
def test_name_length_limits(field, ok, bad):
    data = _set(BASE, field, ok)
    expected = NAME if field != "name" else ok
    assert [p for p in problems_of(dump(data), expected) if _where(p) == field] == []
    assert [_where(p) for p in problems_of(dump(_set(BASE, field, bad)), expected if field != "name" else bad)] == [field]


# ---------------------------------------------------------------- property-based: bad input is refused

def _annotation(path: tuple):
    """The declared type of the value at `path` (None for free-form maps)."""
    if isinstance(path[-1], int):
        parent = config_loader._annotation_at(path[:-1])
        return config_loader._unwrap(typing.get_args(parent)[0]) if typing.get_origin(parent) is list else None
    return config_loader._annotation_at(path)


def _leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaves(value, path + (index,))
    else:
        yield path


def _mappings(node, path=()):
    if isinstance(node, dict):
        yield path
        for key, value in node.items():
            yield from _mappings(value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _mappings(value, path + (index,))


def _required(model: type[BaseModel] = Environment, data=BASE, path=()):
    for name, field in model.model_fields.items():
        key = field.alias or name
        if key not in (data or {}):
            continue
        if field.is_required():
            yield path + (key,)
        inner = config_loader._unwrap(field.annotation)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            yield from _required(inner, data[key], path + (key,))
        elif typing.get_origin(inner) is list and isinstance(data[key], list):
            item = config_loader._unwrap(typing.get_args(inner)[0])
            if isinstance(item, type) and issubclass(item, BaseModel):
                for index, entry in enumerate(data[key]):
                    yield from _required(item, entry, path + (key, index))


TYPED_LEAVES = [p for p in _leaves(BASE) if _annotation(p) is not None]
MAPPINGS = list(_mappings(BASE))
REQUIRED = list(_required())
_not_text = st.one_of(st.integers(), st.booleans(), st.lists(st.integers(), min_size=1, max_size=2),
                      st.dictionaries(st.sampled_from("ab"), st.integers(), min_size=1, max_size=1))
_not_number = st.one_of(st.text(max_size=8), st.booleans(), st.lists(st.integers(), max_size=2))


def _wrong_value(path):
    kind = _annotation(path)
    if kind is int:
        return st.one_of(_not_number, st.floats(allow_nan=False).filter(lambda f: not f.is_integer()))
    if kind is float:
        return _not_number
    if isinstance(kind, type) and issubclass(kind, Enum):
        return st.one_of(st.text(max_size=12).filter(lambda s: s not in {m.value for m in kind}), _not_text)
    return _not_text  # text of any kind (names, emails, crons): never a number, list or map


@st.composite
def mutations(draw):
    """1-4 mutations on unrelated paths, each of which alone makes the file invalid."""
    chosen, taken = [], []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["wrong type", "unknown key", "missing"]))
        if kind == "wrong type":
            path = draw(st.sampled_from(TYPED_LEAVES))
            value = draw(_wrong_value(path))
        elif kind == "unknown key":
            path = draw(st.sampled_from(MAPPINGS)) + ("x_" + draw(st.text("abcxyz", min_size=1, max_size=6)),)
            value = draw(st.integers())
        else:
            path, value = draw(st.sampled_from(REQUIRED)), DELETE
        if any(path[: len(t)] == t or t[: len(path)] == path for t in taken):
            continue
        taken.append(path)
        chosen.append((kind, path, value))
    return chosen


def _apply(data, path, value):
    data = copy.deepcopy(data)
    node = data
    for part in path[:-1]:
        node = node[part]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=mutations())
def test_generated_bad_input_is_refused_and_every_problem_is_named(changes):
    data = BASE
    for _, path, value in changes:
        data = _apply(data, path, value)
    problems = problems_of(dump(data))
    assert problems, f"accepted: {changes}"
    where = {_where(p) for p in problems}
    for line in problems:
        assert line.startswith(f"{SOURCE}:") and "\n" not in line and "Traceback" not in line
        assert len(line.split(": ", 2)) == 3, line
    for kind, path, _ in changes:
        loc = config_loader.render_loc(path)
        assert loc in where or any(w.startswith(loc) for w in where), (kind, loc, problems)


def test_json_schema_refuses_what_the_loader_refuses():
    """Editors validate against the generated JSON Schema: it knows the settings, the enums and the required keys."""
    schema = json.loads((ENVIRONMENTS / "environment.schema.json").read_text())
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {f.alias or n for n, f in Environment.model_fields.items() if f.is_required()}
    assert schema["$defs"]["Profile"]["enum"] == ["lean", "managed"]


def test_environment_files_lists_only_yaml(tmp_path):
    (tmp_path / "dev.yaml").write_text("x")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "environment.schema.json").write_text("{}")
    files, problems = environment_files(tmp_path)
    assert [p.name for p in files] == ["dev.yaml"] and problems == []


# ---------------------------------------------------------------- odd encodings: a YAML block scalar ends in a newline

@pytest.mark.parametrize("path, where", [("project_id", "project_id"), ("region", "region"), ("github.repository", "github.repository"),
                                         ("pipelines[0].name", "pipelines[0].name"), ("labels.owner", "labels")])
def test_a_value_with_a_trailing_newline_is_refused(path, where):
    """`project_id: |` (a block scalar) gives "acme-data-dev\\n": a regex anchored with $ alone would accept it."""
    node = BASE
    for part in path.replace("[0]", ".0").split("."):
        node = node[int(part)] if part.isdigit() else node[part]
    problems = problems_of(dump(_set(BASE, path, node + "\n")))
    assert [_where(p) for p in problems] == [where], problems


@pytest.mark.parametrize("kind, value", [("bucket", "acme-dev-landing"), ("resource", "acme-dev-net"), ("pipeline", "orders"),
                                         ("label_value", "dev"), ("service_account", "acme-dev-etl")])
def test_names_with_a_trailing_newline_are_invalid(kind, value):
    from dataplatform import naming

    assert naming.is_valid(kind, value)
    assert not naming.is_valid(kind, value + "\n")
    with pytest.raises(naming.InvalidName, match=f"^{kind} name {re.escape(repr(value + chr(10)))} is invalid: expected "):
        naming.check(kind, value + "\n")


@pytest.mark.parametrize("path, value", [
    ("network.subnet_cidr", "10.0.0.0/8"), ("network.subnet_cidr", "10.0.0.0/29"), ("network.subnet_cidr", "192.168.0.0/16"),
    ("pipelines[0].schema[2].min", 1000000), ("storage.coldline_after_days", 91),
])
def test_values_at_a_validator_boundary_are_accepted(path, value):
    """The other side of the refusals above: a /8 or /29 subnet, min == max, coldline a day after nearline."""
    data = _set(_set(BASE, "storage.nearline_after_days", 90), path, value)
    assert problems_of(dump(data)) == []


@pytest.mark.parametrize("cidr", ["10.0.0.0/7", "10.0.0.0/30", "100.64.0.0/10", "10.0.0.1/24"])
def test_subnets_outside_the_private_range_sizes_are_refused(cidr):
    problems = problems_of(dump(_set(BASE, "network.subnet_cidr", cidr)))
    assert [_where(p) for p in problems] == ["network.subnet_cidr"], problems


def test_config_caps_are_the_guardrail_caps():
    """A config limit looser than its guardrail would let a file pass `make check` and then refuse synth."""
    from dataplatform.guardrails.compute import CAPS

    assert ("pipelines[0].max_workers", CAPS.dataflow_max_workers, CAPS.dataflow_max_workers + 1) in LIMITS
    assert ("orchestration.composer.max_workers", CAPS.composer_max_workers, CAPS.composer_max_workers + 1) in LIMITS
    assert ("processing.launcher_max_instances", CAPS.function_max_instances, CAPS.function_max_instances + 1) in LIMITS
    assert CAPS.dataflow_max_workers == 50  # the reviewed value (tests/test_guardrail_boundaries.py)
