"""The schema contract: parsing the parameter and validating rows."""

from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal

import pyarrow as pa
import pytest

from workloads.etl.schema import INT64_MAX, INT64_MIN, SchemaError, arrow_schema, jsonable, parse_schema, validate_row

UTC = dt.timezone.utc


def field(name="x", type="STRING", mode="NULLABLE", **extra):
    return {"name": name, "type": type, "mode": mode, "min": None, "max": None, "description": "", **extra}


def one(type, mode="NULLABLE", **bounds):
    return parse_schema([field(type=type, mode=mode, **bounds)])


def check(fields, value):
    clean, violations = validate_row({"x": value}, fields)
    return (clean["x"], None) if clean is not None else (None, violations[0].code)


def test_parses_the_contract_shape_from_json():
    fields = parse_schema(json.dumps([field("id", "INTEGER", "REQUIRED", min=1), field("amount", "NUMERIC", max=10.5)]))
    assert [(f.name, f.type, f.required, f.min, f.max) for f in fields] == [
        ("id", "INTEGER", True, 1, None),
        ("amount", "NUMERIC", False, None, 10.5),
    ]


@pytest.mark.parametrize(
    "schema, message",
    [
        ("not json", "not valid JSON"),
        ([], "non-empty"),
        ([field(type="INT")], "type 'INT'"),
        ([field(mode="REPEATED")], "mode 'REPEATED'"),
        ([field(name="1abc")], "column name"),
        ([field(name="a"), field(name="A")], "defined twice"),
        ([field(typo=1)], "unknown keys"),
        ([field(type="STRING", min=1)], "only supported for INTEGER"),
        ([field(type="FLOAT", min=2, max=1)], "greater than max"),
        ([field(type="FLOAT", min="1")], "finite number"),
        ([field(type="FLOAT", max=True)], "finite number"),
    ],
)
def test_rejects_malformed_schemas(schema, message):
    with pytest.raises(SchemaError, match=message):
        parse_schema(schema)


@pytest.mark.parametrize(
    "type, value, expected",
    [
        ("STRING", "abc", "abc"),
        ("INTEGER", 5, 5),
        ("INTEGER", 5.0, 5),  # pandas' nullable ints arrive as floats
        ("INTEGER", Decimal("7"), 7),
        ("FLOAT", 1, 1.0),
        ("FLOAT", 2.5, 2.5),
        ("NUMERIC", Decimal("1.123456789"), Decimal("1.123456789")),
        ("NUMERIC", "12.50", Decimal("12.50")),
        ("NUMERIC", 0.1, Decimal("0.1")),  # the shortest repr, not 0.1000000000000000055...
        ("NUMERIC", Decimal("9" * 29), Decimal("9" * 29)),
        ("BOOLEAN", False, False),
        ("TIMESTAMP", dt.datetime(2024, 1, 1, 12), dt.datetime(2024, 1, 1, 12, tzinfo=UTC)),
        ("TIMESTAMP", "2024-01-01T13:00:00+01:00", dt.datetime(2024, 1, 1, 12, tzinfo=UTC)),
        ("TIMESTAMP", "2024-01-01T12:00:00Z", dt.datetime(2024, 1, 1, 12, tzinfo=UTC)),
        ("DATE", dt.date(2024, 2, 29), dt.date(2024, 2, 29)),
        ("DATE", "2024-02-29", dt.date(2024, 2, 29)),
        ("DATE", dt.datetime(2024, 2, 29), dt.date(2024, 2, 29)),  # pandas has no date dtype
    ],
)
def test_accepts_values_representable_in_the_column_type(type, value, expected):
    assert check(one(type), value) == (expected, None)


@pytest.mark.parametrize(
    "type, value, code",
    [
        ("STRING", 5, "wrong_type"),
        ("INTEGER", True, "wrong_type"),
        ("INTEGER", 5.5, "wrong_type"),
        ("INTEGER", "5", "wrong_type"),
        ("INTEGER", 2**63, "invalid_value"),
        ("FLOAT", math.nan, "invalid_value"),
        ("FLOAT", math.inf, "invalid_value"),
        ("FLOAT", "1.5", "wrong_type"),
        ("NUMERIC", Decimal("1.0000000001"), "invalid_value"),
        ("NUMERIC", Decimal("1e29"), "invalid_value"),
        ("NUMERIC", "abc", "invalid_value"),
        ("NUMERIC", Decimal("NaN"), "invalid_value"),
        ("BOOLEAN", 1, "wrong_type"),
        ("TIMESTAMP", "yesterday", "invalid_value"),
        ("TIMESTAMP", dt.date(2024, 1, 1), "wrong_type"),
        ("DATE", dt.datetime(2024, 1, 1, 10), "invalid_value"),
        ("DATE", "2024-02-30", "invalid_value"),
    ],
)
def test_rejects_values_that_would_not_load_losslessly(type, value, code):
    assert check(one(type), value) == (None, code)


@pytest.mark.parametrize(
    "type, bounds, value, code",
    [
        ("INTEGER", {"min": 1}, 0, "below_min"),
        ("INTEGER", {"min": 1}, 1, None),
        ("FLOAT", {"max": 1}, 1.0000001, "above_max"),
        ("FLOAT", {"min": 0, "max": 1}, 1.0, None),
        ("NUMERIC", {"max": 0.3}, Decimal("0.3"), None),  # exact decimal comparison
        ("NUMERIC", {"max": 0.3}, Decimal("0.300000001"), "above_max"),
    ],
)
def test_min_and_max_are_inclusive(type, bounds, value, code):
    assert check(one(type, **bounds), value)[1] == code


def test_nulls_pass_nullable_and_fail_required_columns():
    fields = parse_schema([field("a", "INTEGER", "REQUIRED"), field("b", "INTEGER")])
    assert validate_row({"a": 1}, fields) == ({"a": 1, "b": None}, [])
    clean, violations = validate_row({"b": 2}, fields)
    assert clean is None and [(v.field, v.code) for v in violations] == [("a", "missing_required")]


def test_every_problem_of_a_row_is_reported_and_extra_columns_are_dropped():
    fields = parse_schema([field("a", "INTEGER", "REQUIRED", min=0), field("b", "BOOLEAN"), field("c", "STRING")])
    clean, violations = validate_row({"a": -1, "b": "yes", "c": "ok", "extra": 1}, fields)
    assert clean is None
    assert [v.reason for v in violations] == ["a: -1 is below min 0", "b: expected BOOLEAN, got str 'yes'"]
    assert validate_row({"a": 1, "c": "ok", "extra": 1}, fields)[0] == {"a": 1, "b": None, "c": "ok"}


def test_clean_rows_convert_to_the_curated_arrow_schema():
    fields = parse_schema(
        [
            field("i", "INTEGER", "REQUIRED"), field("f", "FLOAT"), field("n", "NUMERIC"), field("b", "BOOLEAN"),
            field("s", "STRING", "REQUIRED", description="text"), field("t", "TIMESTAMP"), field("d", "DATE"),
        ]
    )
    rows = [
        {"i": 1, "f": 1, "n": "12345678901234567890.123456789", "b": True, "s": "x", "t": "2024-01-01T00:00:00+02:00", "d": "2024-01-02"},
        {"i": 2, "s": "y"},
    ]
    clean = [validate_row(row, fields)[0] for row in rows]
    schema = arrow_schema(fields)
    table = pa.Table.from_pylist(clean, schema=schema)
    assert schema.field("i").nullable is False and schema.field("f").nullable is True
    assert schema.field("s").metadata == {b"description": b"text"}
    assert str(schema.field("n").type) == "decimal128(38, 9)" and str(schema.field("t").type) == "timestamp[us, tz=UTC]"
    back = table.to_pylist()
    assert back[0]["n"] == Decimal("12345678901234567890.123456789")
    assert back[0]["t"] == dt.datetime(2023, 12, 31, 22, tzinfo=UTC)
    assert back[1]["f"] is None


def test_jsonable_uses_bigquery_json_forms():
    assert jsonable(Decimal("12.500000000")) == "12.5"
    assert jsonable(Decimal("1E+2")) == "100"
    assert jsonable(Decimal("12345678901234567890.123456789")) == "12345678901234567890.123456789"
    assert jsonable(dt.datetime(2024, 1, 1, tzinfo=UTC)) == "2024-01-01T00:00:00+00:00"
    assert jsonable(math.nan) == "nan"
    assert jsonable(b"\x00\x01") == "AAE="
    assert jsonable({"k": [dt.date(2024, 1, 1)]}) == {"k": ["2024-01-01"]}


# --- edge cases that mutants of the rules survived, checked on both validators -----------------


def both(fields, value):
    """The reference and the vectorised validator must give the same answer; return it."""
    import pyarrow as pa

    from workloads.etl.vectorized import validate_batch

    reference = check(fields, value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        arrow_type = pa.timestamp("us", tz=str(value.tzinfo) if value.tzinfo is not UTC else "UTC")
        array = pa.array([value], arrow_type)
    else:
        array = pa.array([value])
    result = validate_batch(pa.RecordBatch.from_arrays([array], names=["x"]), fields)
    vectorised = (result.valid.column(0)[0].as_py(), None) if result.valid.num_rows else (None, result.invalid[0][2][0].code)
    assert vectorised == reference
    return reference


@pytest.mark.parametrize("value, expected", [
    (INT64_MAX, (INT64_MAX, None)), (INT64_MIN, (INT64_MIN, None)),
    (float(2**62), (2**62, None)), (-float(2**63), (INT64_MIN, None)), (float(2**63), (None, "wrong_type")),
])
def test_int64_limits(value, expected):
    if isinstance(value, float) and value >= 2**63:
        assert check(one("INTEGER"), value) == (None, "invalid_value")  # integral, but past INT64
        return
    assert both(one("INTEGER"), value) == expected


def test_an_int_past_int64_is_invalid_not_a_crash():
    assert check(one("INTEGER"), INT64_MAX + 1) == (None, "invalid_value")
    assert check(one("INTEGER"), INT64_MIN - 1) == (None, "invalid_value")


@pytest.mark.parametrize("value", [0, 7, -3, INT64_MAX, INT64_MIN])
def test_an_int_in_a_numeric_column_is_its_exact_decimal(value):
    assert both(one("NUMERIC"), value) == (Decimal(value), None)
    clean, _ = validate_row({"x": 10**29}, one("NUMERIC"))
    assert clean is None  # past NUMERIC's 29 integer digits: invalid, not a crash


def test_a_tz_aware_date_at_utc_midnight_is_that_date():
    assert both(one("DATE"), dt.datetime(2024, 2, 29, tzinfo=UTC)) == (dt.date(2024, 2, 29), None)
    assert both(one("DATE"), dt.datetime(2024, 2, 29, 0, 0, 1, tzinfo=UTC)) == (None, "invalid_value")


@pytest.mark.parametrize("offset", [2, -5])
def test_a_date_with_a_utc_offset_is_refused_even_at_local_midnight(offset):
    local_midnight = dt.datetime(2024, 2, 29, tzinfo=dt.timezone(dt.timedelta(hours=offset)))
    assert check(one("DATE"), local_midnight) == (None, "invalid_value")
    assert check(one("DATE"), "2024-02-29+02:00") == (None, "invalid_value")


@pytest.mark.parametrize("type, bound, inside, below, above", [
    ("INTEGER", 5, 5, 4, 6), ("FLOAT", 2.5, 2.5, 2.4999999, 2.5000001), ("NUMERIC", 0.3, Decimal("0.3"), Decimal("0.299999999"), Decimal("0.300000001")),
])
def test_min_equal_to_max_admits_exactly_that_value(type, bound, inside, below, above):
    fields = one(type, min=bound, max=bound)
    assert both(fields, inside)[1] is None
    assert both(fields, below) == (None, "below_min")
    assert both(fields, above) == (None, "above_max")
