"""A suite file read once and checked whole: the cases to send and what each answer must do.

YAML (one document) or JSONL (one case per line, and optionally one line `{"suite": {...}}`
with the suite's settings). Suite settings:

    name: capitals                # default: the file's stem
    api: anthropic                # the wire format (and SDK) of every call: anthropic | openai
    model: claude-haiku-4-5       # default model; `--model` / `--variant` choose per run
    system: "Answer in one word." # optional, for every case without its own
    tools: [...]                  # optional, in the suite's wire format
    parameters: {max_tokens: 200, temperature: 0}   # request fields, merged into each case's
    template: "What is the capital of {{country}}?"  # default template of the cases
    judge: {model: claude-sonnet-4-5, api: anthropic}  # default model of `judge` checks
    pass_rate: 1.0                # share of case runs that must pass every check
    cutoffs: {contains: 0.9}      # share of a check's evaluations that must pass
    cases: [...]

A case has an `id` (default: its position), then `messages` (a list in the suite's
format), or `prompt` (one user message), or a `template` with `variables` (`{{name}}` in a
string or in the messages' string contents); optional `system`, `tools`, `parameters`,
`checks`, and `notes` (free text for people, never sent). Checks are one-key mappings
(`- contains: Paris`) with optional `name` (what cutoffs call it; default the kind) and
`ignore_case` (contains, not_contains, exact):

    contains / not_contains: a string or a list of strings (all of them / none of them)
    regex: a pattern the answer's text must match (re.search)
    exact: the answer's text, leading and trailing whitespace aside
    json_schema: a JSON Schema the answer's text (in a ``` fence or not) parses and validates to
    tool_call: a tool name, or {name: ..., input_schema: {...}}: a call to it whose input
        validates
    stop_reason: the format's own value (end_turn, max_tokens, tool_use, ... for anthropic;
        stop, length, tool_calls, ... for openai)
    max_cost_usd: the call's cost from the gateway's ledger, at most this
    max_latency_ms: the call's wall time as the client saw it, at most this
    judge: a rubric, or {rubric: ..., model: ..., api: ...}: a model grades the answer PASS or FAIL

Every mistake is a `SuiteError` naming the file, line and key (`suite.yaml:14:
cases[2].checks[0].regex: not a valid regular expression: ...`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, cast

import yaml

Api = Literal["anthropic", "openai"]
APIS: tuple[Api, ...] = ("anthropic", "openai")
CHECK_KINDS = (
    "contains",
    "not_contains",
    "regex",
    "exact",
    "json_schema",
    "tool_call",
    "stop_reason",
    "max_cost_usd",
    "max_latency_ms",
    "judge",
)
STOP_REASONS: dict[Api, tuple[str, ...]] = {
    "anthropic": ("end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"),
    "openai": ("stop", "length", "tool_calls", "content_filter", "function_call"),
}
PASS_RATE = "pass_rate"
"""The cutoff on the share of case runs that pass every check."""

_SUITE_KEYS = {
    "name",
    "api",
    "model",
    "system",
    "tools",
    "parameters",
    "template",
    "judge",
    "pass_rate",
    "cutoffs",
    "cases",
    "notes",
}
_CASE_KEYS = {
    "id",
    "messages",
    "prompt",
    "template",
    "variables",
    "system",
    "tools",
    "parameters",
    "checks",
    "notes",
}
_CHECK_OPTIONS = {"name", "ignore_case"}
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class SuiteError(ValueError):
    """A suite that can't be run, with where it goes wrong."""


@dataclass(frozen=True, slots=True)
class JudgeSpec:
    rubric: str
    model: str
    api: Api


@dataclass(frozen=True, slots=True)
class ToolCallSpec:
    name: str
    input_schema: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Check:
    """One check of a case. `value` is the parsed spec: a tuple of strings (contains,
    not_contains), a compiled pattern (regex), a string (exact, stop_reason), a schema
    (json_schema), a `ToolCallSpec`, a `Decimal` (max_cost_usd), a float (max_latency_ms)
    or a `JudgeSpec`."""

    kind: str
    name: str
    value: Any
    ignore_case: bool = False


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    messages: tuple[dict[str, Any], ...]
    system: Any
    tools: tuple[dict[str, Any], ...] | None
    parameters: dict[str, Any]
    checks: tuple[Check, ...]


@dataclass(frozen=True, slots=True)
class Suite:
    name: str
    path: str
    api: Api
    model: str | None
    cases: tuple[Case, ...]
    pass_rate: float
    cutoffs: dict[str, float]
    digest: str
    """SHA-256 of what the suite asks and checks (not its layout or notes): the same suite
    rewritten hashes the same, any change to a case or check does not."""
    check_names: tuple[str, ...] = field(default=())


def load_suite(path: str | Path) -> Suite:
    """The suite in the file at `path` (`.jsonl`: JSON lines; anything else: YAML)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SuiteError(f"{path}: cannot read the suite: {error}") from None
    if path.suffix.lower() == ".jsonl":
        doc, lines = _jsonl(text, path)
    else:
        doc, lines = _yaml(text, path)
    try:
        return _suite(doc, str(path), path.stem)
    except _Wrong as wrong:
        raise SuiteError(f"{path}:{_line_of(lines, wrong.where)}: {wrong}") from None


def parse_suite(doc: Mapping[str, Any], *, path: str = "<suite>", name: str = "suite") -> Suite:
    """A suite from an already parsed document (errors name keys, not lines)."""
    try:
        return _suite(doc, path, name)
    except _Wrong as wrong:
        raise SuiteError(f"{path}: {wrong}") from None


class _Wrong(ValueError):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where


def _yaml(text: str, path: Path) -> tuple[Any, dict[str, int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        doc = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(error, "problem", None) or str(error)
        raise SuiteError(f"{where}: not valid YAML: {problem}") from None
    lines: dict[str, int] = {}
    if node is not None:
        _node_lines(node, "", lines)
    return doc, lines


def _node_lines(node: yaml.Node, where: str, lines: dict[str, int]) -> None:
    lines[where] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = str(key.value)
            _node_lines(value, f"{where}.{name}" if where else name, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _node_lines(item, f"{where}[{i}]", lines)


def _jsonl(text: str, path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    settings: dict[str, Any] = {}
    cases: list[Any] = []
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise SuiteError(f"{path}:{number}: not valid JSON: {error.msg}") from None
        if isinstance(item, dict) and set(item) == {"suite"}:
            if not isinstance(item["suite"], dict) or "cases" in item["suite"]:
                raise SuiteError(f"{path}:{number}: suite: expected a mapping of settings")
            settings.update(item["suite"])
            lines.update({key: number for key in item["suite"]})
            continue
        lines[f"cases[{len(cases)}]"] = number
        cases.append(item)
    return {**settings, "cases": cases}, lines


def _line_of(lines: dict[str, int], where: str) -> int:
    """The line of `where`, else of its nearest enclosing key that has one."""
    while where:
        if where in lines:
            return lines[where]
        cut = max(where.rfind("."), where.rfind("["))
        where = where[:cut] if cut > 0 else ""
    return lines.get("", 1)


def _suite(doc: Any, path: str, default_name: str) -> Suite:
    if not isinstance(doc, Mapping):
        raise _Wrong("", "expected a mapping with `cases` (or JSON lines, one case each)")
    _known(doc, _SUITE_KEYS, "")
    name = _string(doc.get("name", default_name), "name")
    api = doc.get("api", "anthropic")
    if api not in APIS:
        raise _Wrong("api", f"expected anthropic or openai, got {api!r}")
    model = _string(doc["model"], "model") if doc.get("model") is not None else None
    judge = _mapping(doc.get("judge", {}), "judge")
    _known(judge, {"model", "api"}, "judge")
    defaults = _Defaults(
        api=api,
        system=doc.get("system"),
        tools=_tools(doc.get("tools"), "tools"),
        parameters=_parameters(doc.get("parameters", {}), "parameters"),
        template=doc.get("template"),
        judge_model=_string(judge["model"], "judge.model") if "model" in judge else None,
        judge_api=_api(judge.get("api", api), "judge.api"),
    )
    raw_cases = doc.get("cases")
    if not isinstance(raw_cases, list) or not raw_cases:
        raise _Wrong("cases", "expected a non-empty list of cases")
    cases = tuple(_case(item, i, defaults) for i, item in enumerate(raw_cases))
    seen: set[str] = set()
    for i, case in enumerate(cases):
        if case.id in seen:
            raise _Wrong(f"cases[{i}].id", f"{case.id!r} is the id of an earlier case")
        seen.add(case.id)
    names = tuple(dict.fromkeys(check.name for case in cases for check in case.checks))
    cutoffs = {
        str(key): _ratio(value, f"cutoffs.{key}")
        for key, value in _mapping(doc.get("cutoffs", {}), "cutoffs").items()
    }
    for key in cutoffs:
        if key not in names and key != PASS_RATE:
            raise _Wrong(f"cutoffs.{key}", f"no check of the suite is called {key!r}")
    pass_rate = _ratio(doc.get(PASS_RATE, 1.0), PASS_RATE)
    return Suite(
        name=name,
        path=path,
        api=api,
        model=model,
        cases=cases,
        pass_rate=pass_rate,
        cutoffs=cutoffs,
        digest=_digest(api, model, cases, pass_rate, cutoffs),
        check_names=names,
    )


@dataclass(frozen=True, slots=True)
class _Defaults:
    api: Api
    system: Any
    tools: tuple[dict[str, Any], ...] | None
    parameters: Mapping[str, Any]
    template: Any
    judge_model: str | None
    judge_api: Api


def _case(item: Any, index: int, defaults: _Defaults) -> Case:
    where = f"cases[{index}]"
    case = _mapping(item, where)
    _known(case, _CASE_KEYS, where)
    case_id = str(case.get("id", index + 1))
    ways = [key for key in ("messages", "prompt", "template") if key in case]
    if len(ways) > 1:
        raise _Wrong(where, f"give one of messages, prompt, template; got {' and '.join(ways)}")
    if "messages" in case:
        messages = _messages(case["messages"], f"{where}.messages")
    elif "prompt" in case:
        messages = ({"role": "user", "content": _string(case["prompt"], f"{where}.prompt")},)
    else:
        template = case.get("template", defaults.template)
        if template is None:
            raise _Wrong(where, "needs messages, a prompt, or a template with variables")
        at = f"{where}.template" if "template" in case else "template"
        variables = _mapping(case.get("variables", {}), f"{where}.variables")
        messages = _render(template, variables, at, f"{where}.variables")
    if "variables" in case and "messages" in case:
        raise _Wrong(f"{where}.variables", "variables fill a template; this case has messages")
    parameters = {
        **defaults.parameters,
        **_parameters(case.get("parameters", {}), f"{where}.parameters"),
    }
    raw_checks = case.get("checks", [])
    if not isinstance(raw_checks, list):
        raise _Wrong(f"{where}.checks", "expected a list of checks")
    checks = tuple(
        _check(spec, f"{where}.checks[{i}]", defaults) for i, spec in enumerate(raw_checks)
    )
    tools = _tools(case["tools"], f"{where}.tools") if "tools" in case else defaults.tools
    return Case(
        id=case_id,
        messages=messages,
        system=case.get("system", defaults.system),
        tools=tools,
        parameters=parameters,
        checks=checks,
    )


def _check(spec: Any, where: str, defaults: _Defaults) -> Check:
    spec = _mapping(spec, where)
    kinds = [key for key in spec if key not in _CHECK_OPTIONS]
    if len(kinds) != 1:
        raise _Wrong(where, f"expected one check of {', '.join(CHECK_KINDS)}; got {kinds}")
    kind = str(kinds[0])
    if kind not in CHECK_KINDS:
        raise _Wrong(f"{where}.{kind}", f"unknown check; expected one of {', '.join(CHECK_KINDS)}")
    at = f"{where}.{kind}"
    name = _string(spec.get("name", kind), f"{where}.name")
    if name == PASS_RATE:
        raise _Wrong(f"{where}.name", f"{PASS_RATE!r} names the suite's own cutoff")
    ignore_case = spec.get("ignore_case", False)
    if not isinstance(ignore_case, bool):
        raise _Wrong(f"{where}.ignore_case", "expected true or false")
    if ignore_case and kind not in ("contains", "not_contains", "exact"):
        raise _Wrong(f"{where}.ignore_case", f"{kind} has no ignore_case")
    value = _check_value(kind, spec[kind], at, defaults)
    return Check(kind=kind, name=name, value=value, ignore_case=ignore_case)


def _check_value(kind: str, raw: Any, at: str, defaults: _Defaults) -> Any:
    if kind in ("contains", "not_contains"):
        texts = raw if isinstance(raw, list) else [raw]
        if not texts or not all(isinstance(text, str) and text for text in texts):
            raise _Wrong(at, "expected a non-empty string or a list of them")
        return tuple(texts)
    if kind == "regex":
        try:
            return re.compile(_string(raw, at))
        except re.error as error:
            raise _Wrong(at, f"not a valid regular expression: {error}") from None
    if kind == "exact":
        return _string(raw, at)
    if kind == "json_schema":
        return _schema(raw, at)
    if kind == "tool_call":
        if isinstance(raw, str):
            return ToolCallSpec(name=raw, input_schema=None)
        spec = _mapping(raw, at)
        _known(spec, {"name", "input_schema"}, at)
        if "name" not in spec:
            raise _Wrong(f"{at}.name", "required: the tool's name")
        schema = spec.get("input_schema")
        return ToolCallSpec(
            name=_string(spec["name"], f"{at}.name"),
            input_schema=None if schema is None else _schema(schema, f"{at}.input_schema"),
        )
    if kind == "stop_reason":
        value = _string(raw, at)
        if value not in STOP_REASONS[defaults.api]:
            allowed = ", ".join(STOP_REASONS[defaults.api])
            raise _Wrong(at, f"{value!r} is not a {defaults.api} stop reason ({allowed})")
        return value
    if kind == "max_cost_usd":
        try:
            cost = Decimal(str(raw))
        except InvalidOperation:
            cost = Decimal(-1)
        if isinstance(raw, bool) or not cost.is_finite() or cost < 0:
            raise _Wrong(at, f"expected a cost in USD >= 0, got {raw!r}")
        return cost
    if kind == "max_latency_ms":
        if isinstance(raw, bool) or not isinstance(raw, int | float) or raw <= 0:
            raise _Wrong(at, f"expected milliseconds > 0, got {raw!r}")
        return float(raw)
    return _judge(raw, at, defaults)


def _judge(raw: Any, at: str, defaults: _Defaults) -> JudgeSpec:
    spec = {"rubric": raw} if isinstance(raw, str) else _mapping(raw, at)
    _known(spec, {"rubric", "model", "api"}, at)
    rubric = _string(spec.get("rubric", ""), f"{at}.rubric")
    if not rubric.strip():
        raise _Wrong(f"{at}.rubric", "required: what the judge grades the answer against")
    model = spec.get("model", defaults.judge_model)
    if model is None:
        raise _Wrong(at, "needs a model of its own: set model here or the suite's judge.model")
    return JudgeSpec(
        rubric=rubric,
        model=_string(model, f"{at}.model"),
        api=_api(spec.get("api", defaults.judge_api), f"{at}.api"),
    )


def _schema(raw: Any, at: str) -> dict[str, Any]:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    schema = _mapping(raw, at)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        raise _Wrong(at, f"not a valid JSON Schema: {error.message}") from None
    return dict(schema)


def _render(
    template: Any, variables: Mapping[str, Any], at: str, variables_at: str
) -> tuple[dict[str, Any], ...]:
    def fill(text: str) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in variables:
                raise _Wrong(variables_at, f"no value for {{{{{name}}}}} of the template")
            return str(variables[name])

        return _PLACEHOLDER.sub(value, text)

    if isinstance(template, str):
        return ({"role": "user", "content": fill(template)},)
    messages = _messages(template, at)
    return tuple(
        {**m, "content": fill(m["content"])} if isinstance(m.get("content"), str) else m
        for m in messages
    )


def _messages(raw: Any, at: str) -> tuple[dict[str, Any], ...]:
    if not isinstance(raw, list) or not raw:
        raise _Wrong(at, "expected a non-empty list of messages")
    for i, message in enumerate(raw):
        message = _mapping(message, f"{at}[{i}]")
        if not isinstance(message.get("role"), str):
            raise _Wrong(f"{at}[{i}].role", "required: a string (user, assistant, ...)")
        if "content" not in message:
            raise _Wrong(f"{at}[{i}].content", "required")
    return tuple(dict(message) for message in raw)


def _tools(raw: Any, at: str) -> tuple[dict[str, Any], ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise _Wrong(at, "expected a list of tools in the suite's wire format")
    return tuple(dict(_mapping(tool, f"{at}[{i}]")) for i, tool in enumerate(raw))


def _parameters(value: Any, at: str) -> Mapping[str, Any]:
    parameters = _mapping(value, at)
    for key in ("model", "messages", "system", "tools", "stream"):
        if key in parameters:
            why = "the eval reads whole answers" if key == "stream" else f"set `{key}` itself"
            raise _Wrong(f"{at}.{key}", f"not a parameter: {why}")
    return parameters


def _mapping(value: Any, at: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _Wrong(at, f"expected a mapping, got {type(value).__name__}")
    return cast(Mapping[str, Any], value)


def _string(value: Any, at: str) -> str:
    if not isinstance(value, str):
        raise _Wrong(at, f"expected a string, got {type(value).__name__}")
    return value


def _api(value: Any, at: str) -> Api:
    if value not in APIS:
        raise _Wrong(at, f"expected anthropic or openai, got {value!r}")
    return cast(Api, value)


def _ratio(value: Any, at: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise _Wrong(at, f"expected a ratio between 0 and 1, got {value!r}")
    return float(value)


def _known(mapping: Mapping[str, Any], allowed: set[str], at: str) -> None:
    for key in mapping:
        if key not in allowed:
            where = f"{at}.{key}" if at else str(key)
            raise _Wrong(where, f"unknown key; expected one of {', '.join(sorted(allowed))}")


def _digest(
    api: str,
    model: str | None,
    cases: tuple[Case, ...],
    pass_rate: float,
    cutoffs: dict[str, float],
) -> str:
    def plain(value: Any) -> Any:
        if isinstance(value, re.Pattern):
            return value.pattern
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, JudgeSpec | ToolCallSpec):
            return {slot: plain(getattr(value, slot)) for slot in value.__slots__}
        if isinstance(value, tuple):
            return [plain(item) for item in value]
        return value

    content = {
        "api": api,
        "model": model,
        "pass_rate": pass_rate,
        "cutoffs": cutoffs,
        "cases": [
            {
                "id": case.id,
                "messages": case.messages,
                "system": case.system,
                "tools": case.tools,
                "parameters": case.parameters,
                "checks": [
                    [check.kind, check.name, plain(check.value), check.ignore_case]
                    for check in case.checks
                ],
            }
            for case in cases
        ],
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
