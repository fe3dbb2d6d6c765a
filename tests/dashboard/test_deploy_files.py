"""deploy/: the Grafana dashboard and the Prometheus alerting rules name only metrics the
gateway's /metrics exposes (after traffic, so every family has declared itself), each with
the suffix its type has, and are well-formed for the tools that load them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import yaml
from tests.dashboard.conftest import Site

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
GRAFANA = DEPLOY / "grafana" / "tollhouse.json"
RULES = DEPLOY / "prometheus" / "tollhouse-alerts.yml"
METRIC = re.compile(r"\btollhouse_[a-z0-9_]+")
SUFFIXES = {"counter": ("",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}


def exposed(site: Site) -> dict[str, set[str]]:
    """Every sample name /metrics can hold, with the label names seen on it."""
    text = httpx.get(f"{site.url}/metrics", timeout=30).text
    names: dict[str, set[str]] = {}
    for kind_line in re.finditer(r"^# TYPE (\S+) (\S+)$", text, flags=re.M):
        family, kind = kind_line.groups()
        for suffix in SUFFIXES.get(kind, ("",)):
            names.setdefault(family + suffix, set())
    for sample in re.finditer(r"^(tollhouse_[a-z0-9_]+)\{([^}]*)\}", text, flags=re.M):
        labels = {pair.split("=", 1)[0] for pair in sample.group(2).split(",") if "=" in pair}
        names.setdefault(sample.group(1), set()).update(labels)
    return names


def expressions() -> list[tuple[str, str]]:
    """(where, PromQL) of every query in both files."""
    found = []
    dashboard = json.loads(GRAFANA.read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            found.append((f"grafana panel {panel['title']!r}", target["expr"]))
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            found.append((f"alert {rule['alert']}", rule["expr"]))
    return found


def test_every_metric_they_name_is_on_metrics(site: Site) -> None:
    names = exposed(site)
    used = {(where, name) for where, expr in expressions() for name in METRIC.findall(expr)}
    assert used
    missing = sorted((where, name) for where, name in used if name not in names)
    assert not missing, f"not on /metrics: {missing}"


def test_every_label_they_filter_or_group_on_is_on_that_metric(site: Site) -> None:
    names = exposed(site)
    for where, expr in expressions():
        for name, labels in re.findall(r"(tollhouse_[a-z0-9_]+)\{([^}]*)\}", expr):
            for label in re.findall(r"([a-z_]+)\s*(?:=~|!=|=)", labels):
                seen = names.get(name, set())
                assert not seen or label in seen, f"{where}: {name} has no label {label}"
        for grouping, inner in re.findall(r"by \(([^)]*)\) \((.*)", expr):
            metric = METRIC.search(inner)
            assert metric is not None
            seen = names.get(metric.group(0), set())
            for label in (part.strip() for part in grouping.split(",")):
                assert label == "le" or not seen or label in seen, f"{where}: no label {label}"


def test_the_alert_rules_are_a_prometheus_rule_file() -> None:
    doc: dict[str, Any] = yaml.safe_load(RULES.read_text())
    rules = [rule for group in doc["groups"] for rule in group["rules"]]
    assert rules
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
        assert re.fullmatch(r"Tollhouse[A-Za-z0-9]+", rule["alert"])
        assert rule["labels"]["severity"] in ("page", "ticket")
        assert rule["annotations"]["summary"]
        assert "for" not in rule or re.fullmatch(r"\d+[smh]", rule["for"])
        assert rule["expr"].count("(") == rule["expr"].count(")")
    assert len({rule["alert"] for rule in rules}) == len(rules)


def test_the_grafana_dashboard_is_importable() -> None:
    doc = json.loads(GRAFANA.read_text())
    assert doc["uid"]
    assert doc["title"] == "Tollhouse"
    assert doc["templating"]["list"][0]["type"] == "datasource"
    ids = [panel["id"] for panel in doc["panels"]]
    assert len(set(ids)) == len(ids)
    for panel in doc["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"]
        for target in panel["targets"]:
            assert target["expr"].count("(") == target["expr"].count(")")
