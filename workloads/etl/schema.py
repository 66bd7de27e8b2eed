"""The pipeline schema contract and row validation.

The schema comes from the environment YAML (via Terraform) as a JSON list of fields::

    {"name": str, "type": "STRING"|"INTEGER"|"FLOAT"|"NUMERIC"|"BOOLEAN"|"TIMESTAMP"|"DATE",
     "mode": "REQUIRED"|"NULLABLE", "min": number|null, "max": number|null, "description": str}

Terraform creates the BigQuery table with exactly these columns, so this module is the single
place that decides what a loadable row is.  The rule is "losslessly representable in the
BigQuery column type": native values of the type pass, and a few unambiguous encodings that
upstream tools produce are accepted too (integral floats for INTEGER, because pandas stores
nullable ints as float; ISO-8601 strings for TIMESTAMP/DATE/NUMERIC, BigQuery's own textual
forms; midnight datetimes for DATE, because pandas has no date dtype).  Anything else is
quarantined with a reason rather than silently converted.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any, Iterable, Mapping, Sequence

import pyarrow as pa

FIELD_TYPES = ("STRING", "INTEGER", "FLOAT", "NUMERIC", "BOOLEAN", "TIMESTAMP", "DATE")
MODES = ("REQUIRED", "NULLABLE")
NUMBER_TYPES = frozenset({"INTEGER", "FLOAT", "NUMERIC"})
_FIELD_KEYS = frozenset({"name", "type", "mode", "min", "max", "description"})
# BigQuery column names: letters, digits, underscores; not starting with a digit; <= 300 chars.
_COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,299}$")

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# BigQuery NUMERIC is DECIMAL(38, 9): 29 integer digits and 9 fractional digits.
NUMERIC_SCALE = 9
NUMERIC_MAX_ABS = Decimal("1e29")
_NUMERIC_QUANTUM = Decimal("1e-9")

ARROW_TYPES: dict[str, pa.DataType] = {
    "STRING": pa.string(),
    "INTEGER": pa.int64(),
    "FLOAT": pa.float64(),
    "NUMERIC": pa.decimal128(38, NUMERIC_SCALE),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMP": pa.timestamp("us", tz="UTC"),
    "DATE": pa.date32(),
}


class SchemaError(ValueError):
    """The schema parameter itself is malformed: the run must not start."""


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    mode: str
    min: int | float | Decimal | None = None
    max: int | float | Decimal | None = None
    description: str = ""

    @property
    def required(self) -> bool:
        return self.mode == "REQUIRED"


@dataclass(frozen=True)
class Violation:
    """Why one value of a row was rejected; ``code`` is stable so reasons can be counted."""

    field: str
    code: str  # missing_required | wrong_type | invalid_value | below_min | above_max
    message: str

    @property
    def reason(self) -> str:
        return f"{self.field}: {self.message}"


class _Invalid(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def parse_schema(schema: str | Sequence[Mapping[str, Any]]) -> tuple[Field, ...]:
    """Parse and check the JSON schema parameter; errors name the offending field.

    Strict on purpose (unknown keys, min/max on non-numeric types are errors): a drift between
    the YAML and this contract should stop the launch, not load surprising data.
    """
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"schema is not valid JSON: {exc}") from None
    if not isinstance(schema, list) or not schema:
        raise SchemaError("schema must be a non-empty JSON list of fields")
    fields: list[Field] = []
    seen: set[str] = set()
    for i, raw in enumerate(schema):
        where = f"schema[{i}]"
        if not isinstance(raw, Mapping):
            raise SchemaError(f"{where} must be an object")
        unknown = set(raw) - _FIELD_KEYS
        if unknown:
            raise SchemaError(f"{where} has unknown keys {sorted(unknown)}")
        name = raw.get("name")
        if not isinstance(name, str) or not _COLUMN_NAME.match(name):
            raise SchemaError(f"{where}.name {name!r} is not a valid BigQuery column name")
        where = f"schema field {name!r}"
        if name.lower() in seen:
            raise SchemaError(f"{where} is defined twice (BigQuery names are case-insensitive)")
        seen.add(name.lower())
        ftype, mode = raw.get("type"), raw.get("mode", "NULLABLE")
        if ftype not in FIELD_TYPES:
            raise SchemaError(f"{where}: type {ftype!r} is not one of {FIELD_TYPES}")
        if mode not in MODES:
            raise SchemaError(f"{where}: mode {mode!r} is not one of {MODES}")
        bounds = {}
        for key in ("min", "max"):
            value = raw.get(key)
            if value is None:
                bounds[key] = None
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise SchemaError(f"{where}: {key} must be a finite number or null, got {value!r}")
            if ftype not in NUMBER_TYPES:
                raise SchemaError(f"{where}: {key} is only supported for INTEGER, FLOAT and NUMERIC")
            # NUMERIC compares exactly in decimal: a bound written 0.3 means 0.3, not the nearest float.
            bounds[key] = Decimal(repr(value)) if ftype == "NUMERIC" else value
        if bounds["min"] is not None and bounds["max"] is not None and bounds["min"] > bounds["max"]:
            raise SchemaError(f"{where}: min {bounds['min']} is greater than max {bounds['max']}")
        description = raw.get("description", "") or ""
        if not isinstance(description, str):
            raise SchemaError(f"{where}: description must be a string")
        fields.append(Field(name, ftype, mode, bounds["min"], bounds["max"], description))
    return tuple(fields)


def _short(value: Any) -> str:
    # str() for values whose repr is noise in a message ("Decimal('1.5')", "datetime.date(...)").
    text = str(value) if isinstance(value, (Decimal, dt.date, dt.time)) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _wrong_type(field: Field, value: Any) -> _Invalid:
    return _Invalid("wrong_type", f"expected {field.type}, got {type(value).__name__} {_short(value)}")


def _to_integer(field: Field, value: Any) -> int:
    if isinstance(value, bool):
        raise _wrong_type(field, value)
    if isinstance(value, int):
        result = value
    elif isinstance(value, float) and value.is_integer():
        result = int(value)
    elif isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        result = int(value)
    else:
        raise _wrong_type(field, value)
    if not INT64_MIN <= result <= INT64_MAX:
        raise _Invalid("invalid_value", f"{result} does not fit in INT64")
    return result


def _to_float(field: Field, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise _wrong_type(field, value)
    result = float(value)
    if not math.isfinite(result):
        raise _Invalid("invalid_value", f"{_short(value)} is not a finite number")
    return result


def _to_numeric(field: Field, value: Any) -> Decimal:
    if isinstance(value, bool):
        raise _wrong_type(field, value)
    try:
        if isinstance(value, Decimal):
            result = value
        elif isinstance(value, int):
            result = Decimal(value)
        elif isinstance(value, float):
            result = Decimal(repr(value))  # the shortest decimal that round-trips, not the binary expansion
        elif isinstance(value, str):
            result = Decimal(value.strip())
        else:
            raise _wrong_type(field, value)
    except InvalidOperation:
        raise _Invalid("invalid_value", f"{_short(value)} is not a decimal number") from None
    if not result.is_finite():
        raise _Invalid("invalid_value", f"{_short(value)} is not a finite number")
    with localcontext() as ctx:
        ctx.prec = 80  # the default 28 digits cannot hold 29 integer + 9 fractional digits (abs() rounds too)
        if abs(result) >= NUMERIC_MAX_ABS:
            raise _Invalid("invalid_value", f"{_short(value)} is out of the NUMERIC range")
        if result != result.quantize(_NUMERIC_QUANTUM):
            raise _Invalid("invalid_value", f"{_short(value)} has more than {NUMERIC_SCALE} decimal places")
    return result


def _to_bool(field: Field, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _wrong_type(field, value)
    return value


def _to_string(field: Field, value: Any) -> str:
    if not isinstance(value, str):
        raise _wrong_type(field, value)
    return value


def _to_timestamp(field: Field, value: Any) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise _Invalid("invalid_value", f"{_short(value)} is not an ISO-8601 timestamp") from None
    if not isinstance(value, dt.datetime):
        raise _wrong_type(field, value)
    # Naive timestamps are taken as UTC, which is what BigQuery does with zone-less literals.
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def _to_date(field: Field, value: Any) -> dt.date:
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise _Invalid("invalid_value", f"{_short(value)} is not an ISO-8601 date") from None
    if isinstance(value, dt.datetime):
        if value.time() != dt.time(0) or (value.tzinfo and value.utcoffset()):
            raise _Invalid("invalid_value", f"{_short(value)} has a time of day; expected a DATE")
        return value.date()
    if not isinstance(value, dt.date):
        raise _wrong_type(field, value)
    return value


_CONVERTERS = {
    "STRING": _to_string,
    "INTEGER": _to_integer,
    "FLOAT": _to_float,
    "NUMERIC": _to_numeric,
    "BOOLEAN": _to_bool,
    "TIMESTAMP": _to_timestamp,
    "DATE": _to_date,
}


def validate_row(row: Mapping[str, Any], fields: Sequence[Field]) -> tuple[dict[str, Any] | None, list[Violation]]:
    """Return ``(clean_row, [])`` for a loadable row, else ``(None, violations)``.

    ``clean_row`` holds exactly the schema's columns with canonical Python values (int, float,
    Decimal, bool, str, UTC datetime, date or None). Columns of the input that are not in the
    schema are dropped: the table has no place for them. Every field is checked, so the
    quarantine reason lists all problems of a row, not just the first.
    """
    clean: dict[str, Any] = {}
    violations: list[Violation] = []
    for field in fields:
        value = row.get(field.name)
        if value is None:
            if field.required:
                violations.append(Violation(field.name, "missing_required", "required value is missing"))
            clean[field.name] = None
            continue
        try:
            converted = _CONVERTERS[field.type](field, value)
            if field.min is not None and converted < field.min:
                raise _Invalid("below_min", f"{_short(value)} is below min {field.min}")
            if field.max is not None and converted > field.max:
                raise _Invalid("above_max", f"{_short(value)} is above max {field.max}")
        except _Invalid as problem:
            violations.append(Violation(field.name, problem.code, problem.message))
            continue
        clean[field.name] = converted
    if violations:
        return None, violations
    return clean, []


def arrow_schema(fields: Sequence[Field]) -> pa.Schema:
    """Arrow schema of the curated Parquet files, which BigQuery loads into the table.

    REQUIRED columns are written non-nullable so a load into a REQUIRED column is accepted.
    """
    return pa.schema(
        [
            pa.field(
                f.name,
                ARROW_TYPES[f.type],
                nullable=not f.required,
                metadata={"description": f.description} if f.description else None,
            )
            for f in fields
        ]
    )


def jsonable(value: Any) -> Any:
    """A JSON-safe rendering of a Parquet value, in BigQuery's JSON representation where it has one."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        # Plain notation without the scale's trailing zeros, as BigQuery renders NUMERIC.
        if not value.is_finite():
            return str(value)
        with localcontext() as ctx:
            ctx.prec = 80  # normalize() rounds to the context precision
            return format(value.normalize(), "f")
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, Iterable):
        return [jsonable(v) for v in value]
    return str(value)
