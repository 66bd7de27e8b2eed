"""Read `environments/<env>.yaml` files into validated config, reporting every problem at once.

One line per problem, pointing at the line of the YAML node that caused it:

    environments/dev.yaml:52: pipelines[0].schedule: minute field '99' is out of range 0-59
    environments/dev.yaml:13: lables: unknown setting (did you mean 'labels'?)

The models stay in `dataplatform/config.py`; this module only reads YAML with positions,
validates, and words the errors for a person. It imports neither cdktn nor the provider,
so `make check` answers in a fraction of a second.

Every problem in one pass: pydantic skips a model's cross-field checks as soon as one of
its fields fails; here they are re-run on the fields that did validate, so a bad region
does not hide a missing dual-region. The name-vs-file, derived-name and cross-file checks
read the raw data for the same reason.

    python -m dataplatform.config_loader [FILE.yaml ...]   # default: every environment file
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
import sys
import time
import types
import typing
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from dataplatform import naming
from dataplatform.config import ENVIRONMENTS_DIR, REPO_ROOT, ConfigError, Environment, contract_problems

SUFFIX = ".yaml"
Loc = tuple[Any, ...]
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in one file: `source:line: where: message`."""

    line: int
    where: str
    message: str

    def render(self, source: str) -> str:
        return f"{source}:{self.line}: {self.where}: {self.message}"


# ---------------------------------------------------------------- YAML with positions


@dataclass
class Document:
    data: Any
    lines: dict[Loc, int]  # path of every key / list item -> its 1-based line
    problems: list[Problem]

    def line(self, loc: Loc) -> int:
        """The line of `loc`, or of its nearest ancestor present in the file."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return 1


def read_yaml(text: str) -> Document:
    """Parse one YAML document keeping the line of every key and list item."""
    loader = _YAML_LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Document(None, {}, [])
        doc = Document(None, {(): node.start_mark.line + 1}, [])
        _walk(node, (), doc, set())
        doc.data = loader.construct_document(node)
        return doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        column = f" (column {mark.column + 1})" if mark else ""
        return Document(None, {}, [Problem(line, "(YAML)", f"invalid YAML: {exc.problem or exc.context}{column}")])
    except yaml.YAMLError as exc:
        # e.g. a control character, refused by the reader before any mark exists; one line, as every problem
        return Document(None, {}, [Problem(1, "(YAML)", f"invalid YAML: {' '.join(str(exc).split())}")])
    finally:
        loader.dispose()


def _walk(node: yaml.Node, path: Loc, doc: Document, active: set[int]) -> None:
    if id(node) in active:  # a recursive alias (&a [*a]) would never end
        return
    active = active | {id(node)}
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key, line = key_node.value, key_node.start_mark.line + 1
            if key in seen:
                doc.problems.append(Problem(line, render_loc(path + (key,)),
                                            f"set twice (first on line {seen[key]}); YAML would silently keep only this one"))
            seen.setdefault(key, line)
            doc.lines.setdefault(path + (key,), line)
            _walk(value_node, path + (key,), doc, active)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            doc.lines.setdefault(path + (index,), item.start_mark.line + 1)
            _walk(item, path + (index,), doc, active)


def _plain(value: Any) -> Any:
    """YAML data as JSON data (dates as ISO text, keys as text), for strict JSON-mode validation."""
    if isinstance(value, dict):
        return {_key(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _key(key: Any) -> str:
    if isinstance(key, bool) or key is None:
        return json.dumps(key)
    return key if isinstance(key, str) else str(key)


# ---------------------------------------------------------------- wording


def render_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = "schema" if part == "schema_" else str(part)
            out += ("." if out else "") + (name if re.fullmatch(r"[\w-]+", name) else repr(name))
    return out or "(top level)"


def _show(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return repr(value)


def did_you_mean(word: Any, candidates: typing.Iterable[str]) -> str | None:
    """The candidate `word` was most likely meant as: same spelling ignoring case and _/-/camelCase, else close."""
    if not isinstance(word, str):
        return None
    candidates = list(candidates)
    squash = lambda s: re.sub(r"[-_\s]", "", s).lower()  # noqa: E731
    for candidate in candidates:
        if squash(candidate) == squash(word):
            return candidate
    close = difflib.get_close_matches(word.lower(), [c.lower() for c in candidates], n=1, cutoff=0.6)
    return next((c for c in candidates if close and c.lower() == close[0]), None)


def _suggest(word: Any, candidates: typing.Iterable[str]) -> str:
    match = did_you_mean(word, candidates)
    return f" (did you mean {match!r}?)" if match else ""


def _unwrap(annotation: Any) -> Any:
    """Optional[X] / Annotated[X, ...] -> X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    """Setting name as written in YAML -> annotation."""
    return {(f.alias or name): f.annotation for name, f in model.model_fields.items()}


def _model_at(loc: Loc, root: type[BaseModel] = Environment) -> type[BaseModel] | None:
    """The model that validates the mapping at `loc` (None if it is not a model)."""
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            if typing.get_origin(current) is not list:
                return None
            current = typing.get_args(current)[0]
        elif isinstance(current, type) and issubclass(current, BaseModel):
            current = _fields(current).get(part)
            if current is None:
                return None
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _annotation_at(loc: Loc) -> Any:
    model = _model_at(loc[:-1]) if loc and isinstance(loc[-1], str) else None
    return _unwrap(_fields(model).get(loc[-1])) if model else None


_YAML_WORDS = "yes/no/on/off/true/false"


def _message(err: dict, unknown_here: dict[Loc, str]) -> str | None:
    """One error in words; None when another line already says it."""
    kind, loc, value = err["type"], tuple(err["loc"]), err.get("input")
    msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        known = sorted(_fields(model)) if model else []
        hint = _suggest(loc[-1], known)
        return f"unknown setting{hint or ('; expected one of: ' + ', '.join(known) if known else '')}"
    if kind == "missing":
        if unknown_here.get(loc):  # `lables:` already says "did you mean 'labels'?"
            return None
        return "required, but not set"
    if value is None:
        model = _model_at(loc)
        return "is empty; expected its settings (" + ", ".join(f"{k}: ..." for k in list(_fields(model))[:2]) + ")" if model else (
            f"is empty; {msg[0].lower() + msg[1:]}")
    if kind in ("enum", "literal_error"):
        choices = re.findall(r"'([^']*)'", err.get("ctx", {}).get("expected", ""))
        return f"{msg} (got {_show(value)}){_suggest(value, choices)}"
    if isinstance(value, bool) and kind == "string_type":
        return f"{msg} (got {_show(value)}: YAML reads {_YAML_WORDS} as booleans; quote it to keep it as text)"
    if isinstance(value, bool):
        return f"{msg} (got {_show(value)}, a YAML boolean)"
    if kind == "string_type" and isinstance(value, (int, float)):
        return f"{msg} (got {_show(value)}: YAML read it as a number; quote it to keep it as written)"
    if isinstance(value, (dict, list)):
        return msg
    return f"{msg} (got {_show(value)})"


# ---------------------------------------------------------------- validation


@lru_cache(maxsize=None)
def _adapter(annotation: Any) -> TypeAdapter:
    return TypeAdapter(annotation)


def _under(loc: Loc, prefix: Loc) -> bool:
    return loc[: len(prefix)] == prefix


def _partial(model: type[BaseModel], data: Any, loc: Loc, errors: list[dict]) -> tuple[Any, list[dict]]:
    """(the model's fields that validated, as attributes; errors of its cross-field checks).

    pydantic runs a model's `mode="after"` validators (and a list field's after-validator)
    only when every field validated. Re-run them on a namespace holding only the fields that
    did: a check reading a field that failed raises AttributeError and is skipped, since the
    failure is reported already. No check ever sees a value the file does not give.
    """
    if not isinstance(data, dict):
        return None, []
    if not any(_under(tuple(e["loc"]), loc) for e in errors):
        return model.model_validate_json(json.dumps(data), strict=True), []
    values, found = {}, []
    for name, field in model.model_fields.items():
        key = field.alias or name
        here = loc + (key,)
        if key not in data:
            if not field.is_required():
                values[name] = field.get_default(call_default_factory=True)
            continue
        value = data[key]
        nested = _unwrap(field.annotation)
        if not any(_under(tuple(e["loc"]), here) for e in errors):
            try:
                values[name] = _adapter(field.annotation).validate_json(json.dumps(value), strict=True)
            except (ValidationError, TypeError, ValueError):
                pass
            continue
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            values[name], more = _partial(nested, value, here, errors)
            found += more
        elif typing.get_origin(nested) is list and isinstance(value, list):
            item = _unwrap(typing.get_args(nested)[0])
            if isinstance(item, type) and issubclass(item, BaseModel):
                items = []
                for index, entry in enumerate(value):
                    part, more = _partial(item, entry, here + (index,), errors)
                    items.append(part)
                    found += more
                if not any(tuple(e["loc"]) == here for e in errors):  # a list that failed itself (too short, a duplicate) did not validate
                    values[name] = items
                found += _rerun_field_checks(model, name, items, here, errors)
    namespace = types.SimpleNamespace(**values)
    if not any(tuple(e["loc"]) == loc and e["type"] != "missing" for e in errors):
        for decorator in model.__pydantic_decorators__.model_validators.values():
            if decorator.info.mode == "after":
                found += _call(lambda d=decorator: d.func(namespace), loc)
    return namespace, found


def _rerun_field_checks(model: type[BaseModel], name: str, items: list, loc: Loc, errors: list[dict]) -> list[dict]:
    if any(tuple(e["loc"]) == loc for e in errors):
        return []  # the list itself already failed (e.g. a duplicate), nothing new to learn
    found = []
    for decorator in model.__pydantic_decorators__.field_validators.values():
        if name in decorator.info.fields and decorator.info.mode == "after" and isinstance(decorator.func, types.MethodType):
            found += _call(lambda d=decorator: d.func(items), loc)
    return found


def _call(check, loc: Loc) -> list[dict]:
    try:
        check()
    except (AttributeError, TypeError):
        return []  # reads a field that failed validation: already reported
    except ValueError as exc:
        return [{"type": "value_error", "loc": loc, "msg": str(exc), "input": {}}]
    return []


def validate(data: Any, doc: Document | None = None) -> tuple[Environment | None, list[Problem]]:
    """Validate parsed YAML against the models; every problem, each with its line."""
    doc = doc or Document(data, {}, [])
    if not isinstance(data, dict):
        what = "nothing" if data is None else f"a {type(data).__name__}"
        return None, [Problem(doc.line(()), "(top level)", f"expected a mapping of settings (name: ..., project_id: ...), got {what}")]
    plain = _plain(data)
    try:
        env = Environment.model_validate_json(json.dumps(plain), strict=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    else:  # the models hold; now the rules that relate sections (ml:, slo: against the pipelines they name)
        found = _contracts(env, doc)
        return (None if found else env), found
    validated, extra = _partial(Environment, plain, (), errors)
    errors += extra
    contracts = _contracts(validated, doc)
    unknown = {}
    for err in errors:
        if err["type"] == "extra_forbidden":
            model = _model_at(tuple(err["loc"][:-1]))
            meant = did_you_mean(err["loc"][-1], _fields(model)) if model else None
            if meant:
                unknown[tuple(err["loc"][:-1]) + (meant,)] = err["loc"][-1]
    problems = []
    for err in errors:
        loc = tuple(err["loc"])
        message = _message(err, unknown)
        if message is None:
            continue
        field = _mentioned_field(loc, message) if err["type"] == "value_error" else None
        line = doc.line(loc + field) if field and loc + field in doc.lines else doc.line(loc)
        problems.append(Problem(line, render_loc(loc + field if field and not loc else loc), message))
    return None, problems + contracts


def _contracts(env: Any, doc: Document) -> list[Problem]:
    """contract_problems on an Environment, or on _partial's namespace of the sections that validated:
    like a model's after-checks there, the rules are skipped when they read a section that failed
    (that failure is reported already), so a bad label and an unrelated type error are both reported."""
    found: list[tuple[Loc, str]] = []
    _call(lambda: found.extend(contract_problems(env)), ())
    return [Problem(doc.line(loc), render_loc(loc), message) for loc, message in found]


def _mentioned_field(loc: Loc, message: str) -> Loc | None:
    """A cross-field check's message starts with the setting it is about ("sla_tier high needs ..."):
    point at that setting's line rather than at the start of the enclosing mapping."""
    words = re.match(r"[a-z_][a-z0-9_.]*", message)
    if not words:
        return None
    path = tuple(words.group(0).split("."))
    model = _model_at(loc + path[:-1])
    return path if model and path[-1] in _fields(model) else None


# ---------------------------------------------------------------- checks on the raw data


def _raw_checks(data: Any, doc: Document, expected_name: str | None) -> list[Problem]:
    """Name = file name, and names derived from name_prefix: on the raw data, so they never wait for a second pass."""
    if not isinstance(data, dict):
        return []
    problems = []
    name, prefix = data.get("name"), data.get("name_prefix")
    if expected_name is not None and isinstance(name, str) and name != expected_name:
        problems.append(Problem(doc.line(("name",)), "name", f"must equal the file name {expected_name!r} (got {name!r})"))
    if isinstance(name, str) and isinstance(prefix, str) and naming.is_valid("environment", name):
        pipelines = data.get("pipelines") if isinstance(data.get("pipelines"), list) else []
        names = [(i, p["name"]) for i, p in enumerate(pipelines)
                 if isinstance(p, dict) and isinstance(p.get("name"), str) and naming.is_valid("pipeline", p["name"])]
        for what, problem in derived_name_problems(naming.Namer(prefix, name), names):
            problems.append(Problem(doc.line(("name_prefix",)), "name_prefix", f"gives an invalid {what} name: {problem}"))
    return problems


def derived_name_problems(namer: naming.Namer, pipelines: list[tuple[int, str]]) -> list[tuple[str, str]]:
    """Names built from name_prefix/env must satisfy GCP: (what, why) for each that does not."""
    probes = [
        ("bucket", lambda: namer.bucket("quarantine")),
        ("service account", lambda: namer.service_account("orchestrator")),
        ("resource", lambda: namer.resource("airflow-ui")),
        ("dataset", lambda: namer.dataset("warehouse")),
        ("workload identity pool", lambda: namer.wif_pool("github")),
    ]
    for index, pipeline in pipelines:
        probes.append((f"pipelines[{index}] resource", lambda p=pipeline: namer.pipeline_resource(p, "quality")))
    problems = []
    for what, build in probes:
        try:
            build()
        except naming.InvalidName as exc:
            problems.append((what, str(exc)))
    return problems


# ---------------------------------------------------------------- files


def display(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def check_text(text: str, source: str, expected_name: str | None = None) -> tuple[Environment | None, list[str], Document]:
    """(environment or None, problem lines sorted by line, the parsed document)."""
    doc = read_yaml(text)
    problems = list(doc.problems)
    if doc.data is None and not problems:
        problems.append(Problem(1, "(file)", "is empty: an environment needs at least name, project_id, ... "
                                             "(copy one: make new-env NAME=<env> FROM=dev)"))
    elif doc.data is not None:  # parsed (duplicate keys are reported along with everything else)
        env, found = validate(doc.data, doc)
        problems += found + _raw_checks(doc.data, doc, expected_name)
        if not problems:
            return env, [], doc
    return None, [p.render(source) for p in sorted(set(problems))], doc


def parse_environment(data: Any, source: str, expected_name: str | None = None) -> Environment:
    """Validate already-parsed YAML (no line numbers: they are 1); raise ConfigError."""
    doc = Document(data, {}, [])
    env, problems = validate(data, doc)
    problems += _raw_checks(data, doc, expected_name)
    if problems:
        raise ConfigError([p.render(source) for p in sorted(set(problems))])
    return env


def _read(path: Path) -> tuple[str | None, list[str]]:
    source = display(path)
    try:
        return path.read_bytes().decode("utf-8"), []
    except OSError as exc:
        return None, [f"{source}:1: (file): cannot read: {exc.strerror}"]
    except UnicodeDecodeError as exc:
        return None, [f"{source}:1: (file): not UTF-8 text ({exc.reason} at byte {exc.start})"]


def load_environment(path: Path) -> Environment:
    """Load and validate one environment file; raise ConfigError listing every problem."""
    path = Path(path)
    text, problems = _read(path)
    if text is None:
        raise ConfigError(problems)
    env, problems, _ = check_text(text, display(path), expected_name=path.stem)
    if problems:
        raise ConfigError(problems)
    return env


def environment_files(directory: Path = ENVIRONMENTS_DIR) -> tuple[list[Path], list[str]]:
    """(the `*.yaml` files, a problem line for each file that looks like an environment but is never read)."""
    directory = Path(directory)
    files = sorted(p for p in directory.glob(f"*{SUFFIX}") if p.is_file())
    misnamed = [f"{display(p)}:1: (file): environment files end in {SUFFIX}; rename it to {p.stem}{SUFFIX} "
                f"(as it is, nothing reads it)" for p in sorted(directory.iterdir()) if p.is_file()
                and p.suffix.lower() in (".yml", ".yaml") and p.suffix != SUFFIX] if directory.is_dir() else []
    return files, misnamed


def load_environments(directory: Path = ENVIRONMENTS_DIR) -> list[Environment]:
    """Load every `*.yaml` in `directory`; problems of every file at once (ConfigError)."""
    files, problems = environment_files(directory)
    if not files and not problems:
        raise ConfigError([f"{display(directory)}:1: (directory): no environment files (*{SUFFIX}) found"])
    envs, claimed = [], {}
    for path in files:
        text, found = _read(path)
        problems += found
        if text is None:
            continue
        env, found, doc = check_text(text, display(path), expected_name=path.stem)
        problems += found
        if env is not None:
            envs.append(env)
        if isinstance(doc.data, dict):
            for key in ("project_id", "project_number"):
                value = doc.data.get(key)
                if isinstance(value, (str, int)) and not isinstance(value, bool):
                    claimed.setdefault((key, str(value)), []).append((path, doc.line((key,))))
    for (key, value), users in claimed.items():
        for path, line in users[1:]:
            first = display(users[0][0])
            problems.append(f"{display(path)}:{line}: {key}: {value!r} is already used by {first}; one project per environment")
    if problems:
        raise ConfigError(problems)
    return envs


def main(argv: list[str] | None = None) -> int:
    """`make check`: validate environment files, one line per problem, exit 2 if any."""
    args = sys.argv[1:] if argv is None else argv
    envs, problems = [], []
    for load in ([lambda a=a: [load_environment(Path(a))] for a in args] or [load_environments]):
        try:
            envs += load()
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"check: {len(problems)} problem(s); nothing was synthesized", file=sys.stderr)
        return 2
    print(f"check: {', '.join(e.name for e in envs)} valid ({time.process_time():.2f} s CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
