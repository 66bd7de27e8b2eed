"""The vectorised validator agrees with the reference (schema.validate_row), value for value.

Every batch below mixes edge values of one Arrow type; every field type, mode and bound is
checked against it. Agreement means: the same rows are valid, the curated values are the
reference's clean values, and invalid rows carry the reference's reasons (word for word).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from decimal import Decimal
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from workloads.etl.schema import INT64_MAX, INT64_MIN, parse_schema, validate_row
from workloads.etl.vectorized import validate_batch

UTC = dt.timezone.utc

COLUMNS = {
    "int64": (pa.int64(), [0, 1, -1, 7, INT64_MAX, INT64_MIN, 100, 101, 99, None]),
    "int8": (pa.int8(), [0, 1, -128, 127, None]),
    "uint64": (pa.uint64(), [0, 5, INT64_MAX, INT64_MAX + 1, 2**64 - 1, None]),
    "float64": (pa.float64(), [0.0, 1.0, -1.5, 2.5, 1e300, math.nan, math.inf, -math.inf, 0.1, 100.0, 100.0000001,
                               9.223372036854776e18, -9.223372036854776e18, 1.0000000001, 12.5, None]),
    "float32": (pa.float32(), [0.5, 3.0, None]),
    "decimal_10": (pa.decimal128(18, 10), [Decimal("1.1234567890"), Decimal("1.1234567891"), Decimal("-5.5"),
                                            Decimal("100.0000000000"), Decimal("7"), None]),
    "decimal_wide": (pa.decimal128(38, 2), [Decimal("1" + "0" * 29), Decimal("9" * 29), Decimal("-" + "9" * 29),
                                            Decimal("0.30"), Decimal("0.31"), None]),
    "decimal_0": (pa.decimal128(20, 0), [Decimal(5), Decimal(-7), Decimal(2**63), None]),
    "decimal256": (pa.decimal256(40, 3), [Decimal("1.5"), None]),
    "bool": (pa.bool_(), [True, False, None]),
    "string": (pa.string(), ["abc", "", " 12.50 ", "12.5", "2024-02-29", "2024-02-30", "2024-01-01T13:00:00+01:00",
                             "yesterday", "1e400", "NaN", "0.3000000001", None]),
    "large_string": (pa.large_string(), ["x", None]),
    "dict_string": (pa.dictionary(pa.int8(), pa.string()), ["a", "b", None, "a"]),
    "ts_naive": (pa.timestamp("us"), [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1, 12), dt.datetime(1969, 12, 31),
                                      dt.datetime(1969, 12, 31, 23, 59), None]),
    "ts_utc": (pa.timestamp("us", tz="UTC"), [dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC), None]),
    "ts_ms": (pa.timestamp("ms"), [dt.datetime(2024, 3, 1), None]),
    "ts_ns": (pa.timestamp("ns", tz="UTC"), [dt.datetime(2024, 3, 1, tzinfo=UTC), None]),
    "ts_paris": (pa.timestamp("us", tz="Europe/Paris"), [dt.datetime(2024, 1, 1, tzinfo=ZoneInfo("Europe/Paris")),
                                                         dt.datetime(2024, 1, 1, 1, tzinfo=ZoneInfo("Europe/Paris")), None]),
    "ts_london": (pa.timestamp("us", tz="Europe/London"), [dt.datetime(2024, 1, 1, tzinfo=ZoneInfo("Europe/London")),
                                                           dt.datetime(2024, 7, 1, tzinfo=ZoneInfo("Europe/London")), None]),
    "ts_offset": (pa.timestamp("us", tz="+02:00"), [dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))), None]),
    "date32": (pa.date32(), [dt.date(2024, 2, 29), dt.date(1, 1, 1), None]),
    "date64": (pa.date64(), [dt.date(2024, 2, 29), None]),
    "time": (pa.time64("us"), [dt.time(12), None]),
    "binary": (pa.binary(), [b"\x00\x01", None]),
    "list": (pa.list_(pa.int64()), [[1, 2], None]),
    "null": (pa.null(), [None, None]),
}

BOUNDS = {
    "INTEGER": [{}, {"min": 1}, {"min": 1, "max": 100}, {"min": 100, "max": 100}, {"min": 0.5, "max": 99.5},
                {"max": -1e19}, {"min": 1e19}, {"min": -1e19}],
    "FLOAT": [{}, {"min": 0, "max": 100}, {"min": 2.5, "max": 2.5}, {"max": 2**60}],
    "NUMERIC": [{}, {"min": 0, "max": 100}, {"max": 0.3}, {"min": -5.5, "max": -5.5}, {"min": 0.0000000001}],
}
TYPES = ["STRING", "INTEGER", "FLOAT", "NUMERIC", "BOOLEAN", "TIMESTAMP", "DATE"]


def cases():
    for ftype in TYPES:
        for bounds in BOUNDS.get(ftype, [{}]):
            for mode in ("NULLABLE", "REQUIRED"):
                yield ftype, mode, bounds


def assert_agrees(batch: pa.RecordBatch, fields):
    result = validate_batch(batch, fields)
    rows = batch.to_pylist() if not any(pa.types.is_timestamp(c.type) and c.type.unit == "ns" for c in batch.columns) else None
    from workloads.etl.vectorized import readable

    rows = readable(batch).to_pylist()
    expected_valid = [clean for clean in (validate_row(r, fields)[0] for r in rows) if clean is not None]
    assert result.valid.to_pylist() == expected_valid
    expected_invalid = [(i, [v.reason for v in validate_row(r, fields)[1]]) for i, r in enumerate(rows)
                        if validate_row(r, fields)[0] is None]
    assert [(i, [v.reason for v in violations]) for i, _, violations in result.invalid] == expected_invalid


@pytest.mark.parametrize("column", sorted(COLUMNS))
def test_every_field_type_agrees_with_the_reference_on_every_column_type(column):
    arrow_type, values = COLUMNS[column]
    array = pa.array(values, arrow_type) if not pa.types.is_dictionary(arrow_type) else pa.array(values).dictionary_encode()
    batch = pa.RecordBatch.from_arrays([array], names=["x"])
    for ftype, mode, bounds in cases():
        fields = parse_schema([{"name": "x", "type": ftype, "mode": mode, **bounds}])
        assert_agrees(batch, fields)


def test_a_missing_column_is_all_nulls():
    batch = pa.RecordBatch.from_arrays([pa.array([1, 2])], names=["other"])
    for mode in ("NULLABLE", "REQUIRED"):
        assert_agrees(batch, parse_schema([{"name": "x", "type": "INTEGER", "mode": mode}]))


def test_random_multi_column_batches_agree():
    rng = random.Random(1234)
    names = sorted(COLUMNS)
    for _ in range(60):
        picked = rng.sample(names, 3)
        length = 12
        arrays = []
        for name in picked:
            arrow_type, values = COLUMNS[name]
            sample = [rng.choice(values) for _ in range(length)]
            arrays.append(pa.array(sample, arrow_type) if not pa.types.is_dictionary(arrow_type)
                          else pa.array(sample, pa.string()).dictionary_encode())
        batch = pa.RecordBatch.from_arrays(arrays, names=["a", "b", "c"])
        fields = parse_schema([
            {"name": col, "type": ftype, "mode": mode, **bounds}
            for col, (ftype, mode, bounds) in zip(["a", "b", "c"], rng.sample(list(cases()), 3))
        ])
        assert_agrees(batch, fields)


def test_split_file_gives_the_same_outputs_on_both_paths(tmp_path, monkeypatch):
    """split_file with the per-row reference (vectorized=False, the benchmark's 'before') and with the
    vectorised validator: byte-identical curated Parquet and quarantine lines, row numbers counted
    across batches (three batches of 40 rows here)."""
    import pyarrow.parquet as pq

    from workloads.etl import demo, pipeline

    monkeypatch.setattr(pipeline, "BATCH_ROWS", 40)
    rng = random.Random(3)
    data = [demo._good_row(rng, i + 1) for i in range(120)]
    for n, i in enumerate(range(5, 120, 11)):  # every kind of broken rule, in every batch
        demo._BREAKERS[n % len(demo._BREAKERS)][1](data[i])
    arrow = pa.schema([("order_id", pa.int64()), ("customer", pa.string()), ("amount", pa.decimal128(18, 10)),
                       ("quantity", pa.int64()), ("discount", pa.float64()), ("paid", pa.bool_()),
                       ("ordered_at", pa.timestamp("us", tz="UTC")), ("ship_date", pa.date32())])
    source = tmp_path / "source.parquet"
    pq.write_table(pa.Table.from_pylist(data, schema=arrow), source)
    fields = parse_schema(demo.SCHEMA)
    outputs = {}
    for label, vectorized in (("rows", False), ("vector", True)):
        result = pipeline.split_file(str(source), fields, str(tmp_path / f"{label}.parquet"), str(tmp_path / f"{label}.jsonl"),
                                     "gs://landing/orders/source.parquet", 1, vectorized=vectorized)
        lines = (tmp_path / f"{label}.jsonl").read_text().splitlines()
        outputs[label] = (pq.read_table(tmp_path / f"{label}.parquet").to_pylist(), lines, result.quarantined_rows)
    assert outputs["rows"] == outputs["vector"]
    curated, lines, quarantined = outputs["rows"]
    assert quarantined == len(lines) == 11 and len(curated) == 120 - 11
    assert [json.loads(line)["_row_number"] for line in lines] == list(range(5, 120, 11))
