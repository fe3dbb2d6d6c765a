"""The README tells the truth about configuration: every YAML example in it is a config the
real loader accepts and `tollhouse check-config` passes, and every setting of the config
model is in its settings reference.

A YAML block that is only part of a config says so on its first line,
`# fragment: under <dotted.path>` (e.g. `# fragment: under models.fast`), and is checked
placed there.
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from tollhouse.config import parse_config
from tollhouse.config.model import GatewayConfig
from tollhouse.evals.suite import parse_suite
from tollhouse.gateway_parts import build_parts

README = Path(__file__).resolve().parent.parent / "README.md"
SHIPPED_CATALOG = README.parent / "src" / "tollhouse" / "catalog" / "models.yaml"
TEXT = README.read_text()
ALL_YAML_BLOCKS = [
    (TEXT.count("\n", 0, match.start()) + 2, match.group(1))
    for match in re.finditer(r"^```yaml\n(.*?)^```", TEXT, flags=re.S | re.M)
]
# A block whose first line is `# eval suite` is an eval suite (tollhouse eval), not a config.
SUITE_MARK = "# eval suite\n"
YAML_BLOCKS = [(n, block) for n, block in ALL_YAML_BLOCKS if not block.startswith(SUITE_MARK)]
SUITE_BLOCKS = [(n, block) for n, block in ALL_YAML_BLOCKS if block.startswith(SUITE_MARK)]
FRAGMENT = re.compile(r"#\s*fragment:\s*under\s+([\w.<>-]+)")
SECRET_REFERENCE = re.compile(r"env:([A-Z][A-Z0-9_]*)")


def as_config(block: str) -> dict[str, Any]:
    doc = yaml.safe_load(block) or {}
    marker = FRAGMENT.match(block.lstrip())
    if marker:
        for key in reversed(marker.group(1).split(".")):
            doc = {key: doc}
    assert isinstance(doc, dict)
    return doc


def stand_in_secret(name: str) -> str:
    """A value of the right shape for the environment variable a README example names."""
    if name.endswith(("_URL", "_URI")):
        return "http://127.0.0.1:9"
    if name.endswith("_DSN"):
        return "host=127.0.0.1 dbname=tollhouse"
    return "stand-in-secret"


def test_the_readme_has_yaml_examples() -> None:
    assert len(YAML_BLOCKS) >= 5


@pytest.mark.parametrize(
    "block", [b for _, b in SUITE_BLOCKS], ids=[f"line {n}" for n, _ in SUITE_BLOCKS]
)
def test_every_eval_suite_example_loads(block: str) -> None:
    suite = parse_suite(yaml.safe_load(block), path="README.md")
    assert suite.cases


@pytest.mark.parametrize(
    "block", [b for _, b in YAML_BLOCKS], ids=[f"line {n}" for n, _ in YAML_BLOCKS]
)
def test_every_yaml_example_passes_what_check_config_checks(
    block: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in SECRET_REFERENCE.findall(block):
        monkeypatch.setenv(name, stand_in_secret(name))
    config = as_config(block)
    catalog = config.get("catalog")
    if isinstance(catalog, dict) and catalog.get("path"):
        # The example's catalog file, stood in for by a copy of the shipped catalog.
        stand_in = tmp_path / Path(catalog["path"]).name
        stand_in.write_text(SHIPPED_CATALOG.read_text())
        config["catalog"] = {**catalog, "path": str(stand_in)}
    build_parts(parse_config(config, source="README.md"))


def _settings(struct: type[msgspec.Struct], prefix: str) -> list[tuple[str, str]]:
    """(group, key) for every leaf setting under `struct`: `ledger`/`spill_path`,
    `providers.<name>`/`api_key`, `alerts.webhooks[]`/`url`."""
    found: list[tuple[str, str]] = []
    for field in msgspec.structs.fields(struct):
        path = f"{prefix}.{field.encode_name}" if prefix else field.encode_name
        nested = _struct_in(field.type)
        if nested is not None:
            kind, inner = nested
            found += _settings(inner, path + {"struct": "", "dict": ".<name>", "list": "[]"}[kind])
        else:
            found.append((prefix, field.encode_name))
    return found


def _struct_in(annotation: Any) -> tuple[str, type[msgspec.Struct]] | None:
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _struct_in(options[0]) if len(options) == 1 else None
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return "struct", annotation
    args = typing.get_args(annotation)
    if origin is dict and isinstance(args[1], type) and issubclass(args[1], msgspec.Struct):
        return "dict", args[1]
    if (
        origin is tuple
        and args
        and isinstance(args[0], type)
        and issubclass(args[0], msgspec.Struct)
    ):
        return "list", args[0]
    return None


REFERENCE_ROWS = [line for line in TEXT.splitlines() if line.startswith("| `")]


@pytest.mark.parametrize(
    ("group", "key"),
    _settings(GatewayConfig, ""),
    ids=[f"{g}.{k}" for g, k in _settings(GatewayConfig, "")],
)
def test_every_setting_is_in_the_settings_reference(group: str, key: str) -> None:
    # A top-level setting that is no section (`flags`) has a row of its own name.
    rows = [row for row in REFERENCE_ROWS if f"`{group or key}`" in row.split(" | ")[0]]
    assert any(f"`{key}: " in row for row in rows), (
        f"README.md's settings reference has no `{key}: <default>` in a row for `{group}`"
    )
