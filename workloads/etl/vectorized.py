"""Row validation over whole Arrow record batches (pyarrow compute), same rules as schema.py.

``schema.validate_row`` is the reference: it states the rules value by value, in Python, and
produces the quarantine reasons.  This module decides the same thing column by column with
Arrow compute kernels, which is what makes validation cheap (no Python object per value):

* for every schema field it computes ``ok`` (the value passes the field's rules, nulls
  included) and ``converted`` (the value in the curated column type, null where not ok);
* a row is valid when every field is ok; the curated batch is the converted columns of the
  valid rows;
* only the *invalid* rows are turned into Python and run through ``validate_row``, so their
  reasons are exactly the reference's, word for word.

Encodings without an exact Arrow kernel (a float or a string in a NUMERIC column, ISO strings
for TIMESTAMP/DATE, a decimal in an INTEGER/FLOAT column, a timestamp with a named time zone
in a DATE column, bounds Arrow cannot hold exactly, decimal256...) are checked for that one
column value by value with the reference converters: the answer never depends on the path.
``tests/test_vectorized.py`` checks both paths agree on generated batches of every type.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from .schema import (
    _CONVERTERS,
    ARROW_TYPES,
    INT64_MAX,
    INT64_MIN,
    NUMERIC_MAX_ABS,
    NUMERIC_SCALE,
    Field,
    Violation,
    _Invalid,
    arrow_schema,
    validate_row,
)

_UTC_NAMES = frozenset({"UTC", "utc", "Etc/UTC", "+00:00", "Z", "GMT", "Etc/GMT", "Zulu", "Universal", "Etc/Universal"})
_TWO_POW_63 = float(2**63)
_EXACT_FLOAT_INT = 2**53


@dataclass
class BatchResult:
    """One validated batch: the curated rows and, per invalid row, its original values and why."""

    valid: pa.RecordBatch
    invalid: list[tuple[int, dict[str, Any], list[Violation]]]


class _Fallback(Exception):
    """This column's encoding has no exact vectorised check: use the reference converters."""


def readable(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Truncate nanosecond timestamps to microseconds (BigQuery's precision) and decode dictionaries.

    Both the vectorised checks and the reference see these values, so they see the same thing.
    """
    columns, changed = [], False
    for column in batch.columns:
        if pa.types.is_dictionary(column.type):
            column, changed = column.dictionary_decode(), True
        if pa.types.is_timestamp(column.type) and column.type.unit == "ns":
            column, changed = pc.cast(column, pa.timestamp("us", tz=column.type.tz), safe=False), True
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names) if changed else batch


def validate_batch(batch: pa.RecordBatch, fields: Sequence[Field]) -> BatchResult:
    """Split a record batch into curated rows (arrow_schema(fields)) and invalid rows with reasons."""
    batch = readable(batch)
    n = batch.num_rows
    row_ok = None
    converted: list[pa.Array] = []
    for field in fields:
        index = batch.schema.get_field_index(field.name)
        column = batch.column(index) if index >= 0 else pa.nulls(n)
        ok, values = check_column(field, column)
        converted.append(values)
        row_ok = ok if row_ok is None else pc.and_(row_ok, ok)
    schema = arrow_schema(fields)
    if row_ok is None or n == 0:
        return BatchResult(pa.RecordBatch.from_arrays([pa.array([], f.type) for f in schema], schema=schema), [])
    if pc.all(row_ok).as_py():
        return BatchResult(pa.RecordBatch.from_arrays(converted, schema=schema), [])
    valid = pa.RecordBatch.from_arrays([pc.filter(c, row_ok) for c in converted], schema=schema)
    bad_index = pc.indices_nonzero(pc.invert(row_ok))
    invalid = []
    for i, row in zip(bad_index.to_pylist(), batch.take(bad_index).to_pylist()):
        clean, violations = validate_row(row, fields)
        if clean is not None:  # the two paths disagree: a bug, never silently load or drop the row
            raise AssertionError(f"row {i}: vectorised check rejected a row the reference accepts: {row!r}")
        invalid.append((i, row, violations))
    return BatchResult(valid, invalid)


def check_column(field: Field, column: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(ok, converted) for one field: ok has no nulls; converted is ARROW_TYPES[type], null where not ok."""
    target = ARROW_TYPES[field.type]
    present = pc.is_valid(column)
    if pa.types.is_null(column.type):
        ok = pc.invert(present) if not field.required else present
        return _no_nulls(ok), pa.nulls(len(column), target)
    try:
        type_ok, values = _VECTOR_CHECKS[field.type](field, column)
        if pa.types.is_null(values.type):
            values = pa.nulls(len(column), target)
        type_ok = _no_nulls(type_ok)
        type_ok = pc.and_(type_ok, _within_bounds(field, values, type_ok))
    except _Fallback:
        return _reference_column(field, column)
    # Nulls: fine in NULLABLE columns, a violation in REQUIRED ones; non-null values must pass.
    ok = pc.and_(present, type_ok) if field.required else pc.or_(pc.invert(present), type_ok)
    ok = _no_nulls(ok)
    converted = pc.if_else(type_ok, values, pa.scalar(None, target))
    return ok, converted


def _no_nulls(mask: pa.Array) -> pa.Array:
    return pc.fill_null(mask, False)


def _none_ok(column: pa.Array) -> tuple[pa.Array, pa.Array]:
    """No value of this column's Arrow type converts to the field's type (e.g. a bool in an INTEGER
    column): the reference says wrong_type for each."""
    return pa.array([False] * len(column)), pa.nulls(len(column))


# --------------------------------------------------------------------------- per type


def _string(field: Field, column: pa.Array):
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return pc.is_valid(column), pc.cast(column, pa.string())
    return _none_ok(column)


def _boolean(field: Field, column: pa.Array):
    if pa.types.is_boolean(column.type):
        return pc.is_valid(column), column
    return _none_ok(column)


def _integer(field: Field, column: pa.Array):
    t = column.type
    if pa.types.is_integer(t):
        if pa.types.is_uint64(t):
            fits = pc.less_equal(column, pa.scalar(INT64_MAX, pa.uint64()))
            return fits, pc.cast(pc.if_else(fits, column, pa.scalar(None, t)), pa.int64())
        return pc.is_valid(column), pc.cast(column, pa.int64())
    if pa.types.is_floating(t):
        x = pc.cast(column, pa.float64())
        ok = pc.and_(pc.and_(pc.is_finite(x), pc.equal(pc.floor(x), x)),
                     pc.and_(pc.greater_equal(x, -_TWO_POW_63), pc.less(x, _TWO_POW_63)))
        ok = _no_nulls(ok)
        return ok, pc.cast(pc.if_else(ok, x, pa.scalar(None, pa.float64())), pa.int64())
    if pa.types.is_decimal(t):
        raise _Fallback
    return _none_ok(column)


def _float(field: Field, column: pa.Array):
    t = column.type
    if pa.types.is_floating(t):
        x = pc.cast(column, pa.float64())
        return pc.is_finite(x), x
    if pa.types.is_integer(t):
        return pc.is_valid(column), pc.cast(column, pa.float64(), safe=False)
    if pa.types.is_decimal(t):
        raise _Fallback
    return _none_ok(column)


def _numeric(field: Field, column: pa.Array):
    t = column.type
    target = ARROW_TYPES["NUMERIC"]
    if pa.types.is_decimal128(t):
        ok = pc.is_valid(column)
        if t.precision - t.scale > 29:
            limit = pa.scalar(Decimal(10) ** 29, pa.decimal128(t.precision, 0))
            ok = pc.and_(ok, pc.less(pc.abs(column), pc.cast(limit, t)))
        values = column
        if t.scale > NUMERIC_SCALE:
            try:
                rounded = pc.round(column, ndigits=NUMERIC_SCALE)
            except pa.ArrowException as exc:
                raise _Fallback from exc
            ok = pc.and_(ok, pc.equal(rounded, column))
            values = rounded
        ok = _no_nulls(ok)
        values = pc.if_else(ok, values, pa.scalar(None, values.type))
        try:
            return ok, pc.cast(values, target)
        except pa.ArrowException as exc:
            raise _Fallback from exc
    if pa.types.is_integer(t) and not pa.types.is_uint64(t):
        return pc.is_valid(column), pc.cast(column, target)
    if pa.types.is_decimal(t) or pa.types.is_floating(t) or pa.types.is_integer(t) or _is_text(t):
        raise _Fallback  # float repr, decimal256, uint64 and strings: the reference's exact rules
    return _none_ok(column)


def _timestamp(field: Field, column: pa.Array):
    t = column.type
    if pa.types.is_timestamp(t):
        # Arrow stores tz-aware timestamps as UTC instants and naive ones as wall time, which the
        # rule takes as UTC: either way the stored number is the UTC instant.
        as_us = pc.cast(column, pa.timestamp("us", tz=t.tz))
        return pc.is_valid(column), pc.cast(pc.cast(as_us, pa.int64()), ARROW_TYPES["TIMESTAMP"])
    if _is_text(t):
        raise _Fallback
    return _none_ok(column)


def _date(field: Field, column: pa.Array):
    t = column.type
    if pa.types.is_date32(t) or pa.types.is_date64(t):
        return pc.is_valid(column), pc.cast(column, pa.date32())
    if pa.types.is_timestamp(t):
        if t.tz is not None and t.tz not in _UTC_NAMES:
            raise _Fallback  # a named zone: whether the offset is zero depends on the date
        # The stored number is the UTC instant (naive: wall time taken as UTC); midnight if it is
        # a whole number of days, i.e. flooring to the day and back changes nothing.
        wall = pc.cast(pc.cast(pc.cast(column, pa.timestamp("us", tz=t.tz)), pa.int64()), pa.timestamp("us"))
        days = pc.cast(wall, pa.date32())
        midnight = _no_nulls(pc.equal(pc.cast(days, pa.timestamp("us")), wall))
        return midnight, pc.if_else(midnight, days, pa.scalar(None, pa.date32()))
    if _is_text(t):
        raise _Fallback
    return _none_ok(column)


_VECTOR_CHECKS: dict[str, Callable[[Field, pa.Array], tuple[pa.Array, pa.Array]]] = {
    "STRING": _string,
    "INTEGER": _integer,
    "FLOAT": _float,
    "NUMERIC": _numeric,
    "BOOLEAN": _boolean,
    "TIMESTAMP": _timestamp,
    "DATE": _date,
}


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


# --------------------------------------------------------------------------- bounds


def _within_bounds(field: Field, values: pa.Array, type_ok: pa.Array) -> pa.Array:
    """min/max (inclusive) on the converted values, exactly as Python compares them."""
    ok = pa.array([True] * len(values))
    for bound, below in ((field.min, True), (field.max, False)):
        if bound is None:
            continue
        scalar = _bound_scalar(field, bound, below)
        if scalar is None:  # the bound lies outside every value of the type
            outside = _bound_excludes_all(field, bound, below)
            if outside:
                ok = pc.and_(ok, pc.invert(type_ok))
            continue
        broken = pc.less(values, scalar) if below else pc.greater(values, scalar)
        ok = pc.and_(ok, pc.invert(_no_nulls(broken)))
    return ok


def _bound_scalar(field: Field, bound, below: bool):
    if field.type == "INTEGER":
        # For integers x: x < min  <=>  x < ceil(min);  x > max  <=>  x > floor(max).
        edge = math.ceil(bound) if below else math.floor(bound)
        if not INT64_MIN <= edge <= INT64_MAX:
            return None
        return pa.scalar(edge, pa.int64())
    if field.type == "FLOAT":
        if isinstance(bound, int) and abs(bound) > _EXACT_FLOAT_INT:
            raise _Fallback  # Python compares int and float exactly; a double cannot hold this bound
        return pa.scalar(float(bound), pa.float64())
    if field.type == "NUMERIC":
        bound = Decimal(bound)
        if bound != bound.quantize(Decimal(1).scaleb(-NUMERIC_SCALE)) or abs(bound) >= NUMERIC_MAX_ABS:
            raise _Fallback
        return pa.scalar(bound, ARROW_TYPES["NUMERIC"])
    raise _Fallback


def _bound_excludes_all(field: Field, bound, below: bool) -> bool:
    edge = math.ceil(bound) if below else math.floor(bound)
    return edge > INT64_MAX if below else edge < INT64_MIN


# --------------------------------------------------------------------------- reference path


def _reference_column(field: Field, column: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The reference converters and bounds for one column, value by value."""
    convert = _CONVERTERS[field.type]
    oks, values = [], []
    for value in column.to_pylist():
        if value is None:
            oks.append(not field.required)
            values.append(None)
            continue
        try:
            converted = convert(field, value)
            if field.min is not None and converted < field.min:
                raise _Invalid("below_min", "")
            if field.max is not None and converted > field.max:
                raise _Invalid("above_max", "")
        except _Invalid:
            oks.append(False)
            values.append(None)
            continue
        oks.append(True)
        values.append(converted)
    return pa.array(oks, pa.bool_()), pa.array(values, ARROW_TYPES[field.type])
