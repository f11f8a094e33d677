"""Checks of the operations files in ops/: Prometheus config, alert rules, Grafana provisioning.

- promtool validates the scrape config and the rules, and runs the rule unit tests;
- every alert has a unit test where it fires and one where it must stay silent;
- every alert carries a severity and summary/description/runbook_url, and its runbook exists;
- the Grafana dashboard parses and refers only to provisioned data sources (by uid);
- every metric (and label) name used by a rule or a dashboard query is one that the telemetry
  registry (telemetry/registry/, from which docs/observability.md is generated) promises, so
  renaming a metric in the contract breaks this test.

promtool comes from the Debian `prometheus` package (`make test` installs it); when it is
missing the tests fail instead of skipping, so CI cannot go green without running the rules.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import telemetry_registry

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parent.parent
OPS = ROOT / "ops"
PROM_DIR = OPS / "prometheus"
PROM_CONFIG = PROM_DIR / "prometheus.yml"
RULE_FILES = sorted((PROM_DIR / "rules").glob("*.yml"))
RULE_TEST_FILES = sorted((PROM_DIR / "tests").glob("*.yml"))
DATASOURCES = OPS / "grafana/provisioning/datasources/datasources.yml"
DASHBOARD_PROVIDERS = OPS / "grafana/provisioning/dashboards/dashboards.yml"
DASHBOARDS = sorted((OPS / "grafana/dashboards").glob("*.json"))
OPS_README = OPS / "README.md"

SEVERITIES = {"critical", "warning"}
# Series Prometheus itself produces, not the services.
PROMETHEUS_BUILTIN_METRICS = {"up", "ALERTS", "ALERTS_FOR_STATE"}
# Labels Prometheus attaches (job, instance), histogram buckets (le) and the ALERTS series.
PROMETHEUS_BUILTIN_LABELS = {"job", "instance", "le", "alertname", "alertstate", "__name__"}
# The Grafana built-in annotation source is not a provisioned data source.
GRAFANA_BUILTIN_UIDS = {"-- Grafana --", "grafana"}


# --- helpers ------------------------------------------------------------------------------------


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool not found on PATH: install the Debian package `prometheus` "
            "(`make system-deps`, which `make test` runs)"
        )
    return path


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], cwd=ROOT, capture_output=True, text=True, timeout=90, check=False
    )


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, (
        f"{' '.join(result.args)} exited {result.returncode}\n"
        f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rules() -> list[dict[str, Any]]:
    assert RULE_FILES, f"no rule files in {PROM_DIR / 'rules'}"
    found = []
    for path in RULE_FILES:
        for group in load_yaml(path)["groups"]:
            found.extend(group["rules"])
    return found


def alert_rules() -> dict[str, dict[str, Any]]:
    alerts: dict[str, dict[str, Any]] = {}
    for rule in rules():
        if "alert" in rule:
            assert rule["alert"] not in alerts, f"alert {rule['alert']} is defined twice"
            alerts[rule["alert"]] = rule
    return alerts


def recorded_names() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


def walk(node: Any) -> Iterator[tuple[str | None, Any, Any]]:
    """Yield (key, value, parent) for every entry of a nested JSON/YAML structure."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value, node
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield None, item, node
            yield from walk(item)


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # panels inside collapsed rows


def provisioned_datasources() -> dict[str, dict[str, Any]]:
    return {ds["uid"]: ds for ds in load_yaml(DATASOURCES)["datasources"]}


# --- PromQL names -------------------------------------------------------------------------------

PROMQL_WORDS = {
    # aggregation operators, binary operators and modifiers (functions are recognised by "(")
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
    "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
}  # fmt: skip
STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
GRAFANA_VAR_RE = re.compile(r"\$\{[^}]*\}|\$\w+")
MATCHERS_RE = re.compile(r"\{([^}]*)\}")
MATCHER_LABEL_RE = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")
GROUPING_RE = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
IDENT_RE = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()")


def promql_names(expr: str) -> tuple[set[str], set[str]]:
    """Return (metric names, label names) used by a PromQL expression.

    A small lexer, not a parser: enough for the expressions of this repository. Grafana
    variables ($job, ${job}, $__rate_interval) are removed first.
    """
    text = STRING_RE.sub('""', expr)
    text = GRAFANA_VAR_RE.sub("", text)
    labels: set[str] = set()
    for body in MATCHERS_RE.findall(text):
        labels |= set(MATCHER_LABEL_RE.findall(body))
    text = MATCHERS_RE.sub(" ", text)
    for body in GROUPING_RE.findall(text):
        labels |= set(re.findall(r"[A-Za-z_]\w*", body))
    text = GROUPING_RE.sub(" ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery selectors
    text = re.sub(r"\boffset\s+-?\w+", " ", text)
    metrics = {name for name in IDENT_RE.findall(text) if name.lower() not in PROMQL_WORDS}
    return metrics, labels


def contract() -> tuple[set[str], set[str]]:
    """Metric names (with histogram series suffixes) and label names of the telemetry registry
    (telemetry/registry/metrics.yaml: the contract docs/observability.md is generated from)."""
    metrics: set[str] = set()
    labels: set[str] = set()
    for metric in telemetry_registry.load().metrics:
        if not metric["metric_name"]:
            continue  # prometheus-client's own process/GC families: not part of the contract
        prometheus = metric["prometheus"]
        name = prometheus["name"]
        metrics.add(name)
        if prometheus["type"] == "histogram":
            metrics |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
        labels |= set(prometheus["labels"])
    return metrics, labels


def rule_expressions() -> list[tuple[str, str]]:
    return [(rule.get("alert") or rule["record"], rule["expr"]) for rule in rules()]


def dashboard_prometheus_expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """PromQL of every panel query, variable and annotation that uses a Prometheus data source."""
    prom_uids = {uid for uid, ds in provisioned_datasources().items() if ds["type"] == "prometheus"}

    def is_prometheus(node: dict[str, Any], default: Any = None) -> bool:
        datasource = node.get("datasource", default)
        return isinstance(datasource, dict) and datasource.get("uid") in prom_uids

    found = []
    for panel in all_panels(dashboard):
        for target in panel.get("targets", []):
            if is_prometheus(target, panel.get("datasource")) and target.get("expr"):
                found.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        if is_prometheus(variable) and query:
            inner = re.fullmatch(r"\s*label_values\((.*?)(?:,\s*\w+)?\)\s*", query)
            found.append((f"variable {variable['name']}", inner.group(1) if inner else query))
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if is_prometheus(annotation) and annotation.get("expr"):
            found.append((f"annotation {annotation['name']!r}", annotation["expr"]))
    return found


# --- promtool -----------------------------------------------------------------------------------


def test_promtool_check_config() -> None:
    assert_ok(run_promtool("check", "config", str(PROM_CONFIG.relative_to(ROOT))))


def test_promtool_check_rules() -> None:
    assert RULE_FILES
    assert_ok(run_promtool("check", "rules", *(str(p.relative_to(ROOT)) for p in RULE_FILES)))


def test_promtool_rule_unit_tests() -> None:
    assert RULE_TEST_FILES, f"no rule unit tests in {PROM_DIR / 'tests'}"
    result = run_promtool("test", "rules", *(str(p.relative_to(ROOT)) for p in RULE_TEST_FILES))
    assert_ok(result)
    assert "SUCCESS" in result.stdout + result.stderr


# --- Prometheus configuration -------------------------------------------------------------------


def test_scrape_config_shape() -> None:
    config = load_yaml(PROM_CONFIG)
    assert config["global"]["scrape_interval"] == "15s"
    assert config["global"]["evaluation_interval"] == "15s"
    assert config["rule_files"] == ["rules/*.yml"]
    # The glob loads the rules and never the rule unit tests.
    loaded = sorted(PROM_DIR.glob(config["rule_files"][0]))
    assert loaded == RULE_FILES
    assert not set(loaded) & set(RULE_TEST_FILES)

    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"frontend", "backend"}
    for name, port in (("frontend", 12016), ("backend", 12015)):
        job = jobs[name]
        assert job.get("metrics_path", "/metrics") == "/metrics"
        assert len(job["static_configs"]) == 1, "one static_configs entry per job"
        # The network aliases of ops/coolify.md (tests/test_nixpacks.py holds the two equal).
        assert job["static_configs"][0]["targets"] == [f"flights-{name}:{port}"]
        # The default must scrape services that run without METRICS_TOKEN; the token is opt-in.
        assert "authorization" not in job and "bearer_token_file" not in job
    assert "credentials_file: /etc/prometheus/metrics_token" in PROM_CONFIG.read_text()


# --- alert rules and their unit tests -----------------------------------------------------------


def test_every_alert_fires_and_stays_silent_in_unit_tests() -> None:
    alerts = alert_rules()
    assert alerts, "no alerts defined"
    firing: set[str] = set()
    silent: set[str] = set()
    for path in RULE_TEST_FILES:
        for case in load_yaml(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                name = check["alertname"]
                assert name in alerts, f"{path.name}: test of unknown alert {name}"
                (firing if check.get("exp_alerts") else silent).add(name)
    missing_firing = sorted(set(alerts) - firing)
    missing_silent = sorted(set(alerts) - silent)
    assert not missing_firing, f"alerts without a unit test where they fire: {missing_firing}"
    assert not missing_silent, (
        f"alerts without a unit test where they stay silent: {missing_silent}"
    )


def github_anchor(heading: str) -> str:
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def test_alerts_have_severity_annotations_and_runbooks() -> None:
    readme = OPS_README.read_text()
    anchors = {github_anchor(h) for h in re.findall(r"^#{1,6}\s+(.+)$", readme, re.MULTILINE)}
    for name, rule in alert_rules().items():
        assert rule.get("labels", {}).get("severity") in SEVERITIES, f"{name}: severity"
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            assert annotations.get(key), f"{name}: annotation {key} missing"
        target, _, anchor = annotations["runbook_url"].partition("#")
        assert target == "ops/README.md", f"{name}: runbook_url should point at ops/README.md"
        assert anchor in anchors, f"{name}: ops/README.md has no section #{anchor}"


def test_slo_excludes_probe_and_metrics_routes() -> None:
    slo = [expr for name, expr in rule_expressions() if name.startswith("job:http_slo_")]
    assert slo, "no SLO recording rules"
    for expr in slo:
        if "http_server_request_duration_seconds_count" in expr:
            assert 'http_route!~"/livez|/readyz|/health|/metrics"' in expr, expr


# --- telemetry contract -------------------------------------------------------------------------


def test_promql_lexer() -> None:
    """The name extraction below is only as good as this lexer: keep it honest."""
    metrics, labels = promql_names(
        'histogram_quantile(0.95, sum by (job, http_route, le) (rate(foo_bucket{job=~"$job", '
        'a="x{y}"}[$__rate_interval]))) > 1e3 and on (job) up == 0 or absent(bar_total) '
        "/ 0.005 * job:recorded:rate5m offset 1h"
    )
    assert metrics == {"foo_bucket", "up", "bar_total", "job:recorded:rate5m"}
    assert labels == {"job", "http_route", "le", "a"}


def test_contract_tables_parse() -> None:
    metrics, labels = contract()
    for name in (
        "http_server_request_duration_seconds_count",
        "duckdb_query_duration_seconds_bucket",
        "backend_request_duration_seconds_bucket",
        "duckdb_wal_size_bytes",
    ):
        assert name in metrics
    assert {"http_route", "query", "outcome", "http_response_status_code"} <= labels


def check_names(
    where: str, expr: str, known_metrics: set[str], known_labels: set[str]
) -> list[str]:
    metrics, labels = promql_names(expr)
    problems = [f"{where}: unknown metric {m}" for m in sorted(metrics - known_metrics)]
    problems += [f"{where}: unknown label {lbl}" for lbl in sorted(labels - known_labels)]
    return problems


def test_rule_expressions_use_contract_names() -> None:
    doc_metrics, doc_labels = contract()
    known_metrics = doc_metrics | PROMETHEUS_BUILTIN_METRICS | recorded_names()
    known_labels = doc_labels | PROMETHEUS_BUILTIN_LABELS
    used: set[str] = set()
    problems: list[str] = []
    for where, expr in rule_expressions():
        used |= promql_names(expr)[0]
        problems += check_names(where, expr, known_metrics, known_labels)
    assert not problems, "\n".join(problems)
    # The rules measure what they claim to (the lexer found the raw series).
    assert {
        "http_server_request_duration_seconds_count",
        "http_server_request_duration_seconds_bucket",
        "duckdb_query_duration_seconds_bucket",
        "duckdb_query_duration_seconds_count",
        "backend_request_duration_seconds_count",
        "up",
    } <= used


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_queries_use_contract_names(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    doc_metrics, doc_labels = contract()
    known_metrics = doc_metrics | PROMETHEUS_BUILTIN_METRICS | recorded_names()
    known_labels = doc_labels | PROMETHEUS_BUILTIN_LABELS
    expressions = dashboard_prometheus_expressions(dashboard)
    assert len(expressions) >= 10, "the dashboard's Prometheus queries were not found"
    problems: list[str] = []
    used: set[str] = set()
    for where, expr in expressions:
        used |= promql_names(expr)[0]
        problems += check_names(where, expr, known_metrics, known_labels)
    assert not problems, "\n".join(problems)
    # Every metric of the contract is on the dashboard (histograms through a series of theirs).
    for name in {m for m in doc_metrics if not m.endswith(("_bucket", "_count", "_sum"))}:
        assert any(u == name or u.startswith(name + "_") for u in used), f"{name} not charted"


# --- Grafana ------------------------------------------------------------------------------------


def test_grafana_datasources_link_metrics_traces_and_logs() -> None:
    sources = provisioned_datasources()
    assert {uid: sources[uid]["type"] for uid in ("prometheus", "tempo", "loki")} == {
        "prometheus": "prometheus",
        "tempo": "tempo",
        "loki": "loki",
    }
    # Every cross-reference inside the provisioning file points at a provisioned uid.
    for key, value, _parent in walk(load_yaml(DATASOURCES)):
        if key == "datasourceUid":
            assert value in sources, f"datasourceUid {value} is not provisioned"

    exemplars = sources["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert any(d["name"] == "trace_id" and d.get("datasourceUid") == "tempo" for d in exemplars)
    assert sources["tempo"]["jsonData"]["tracesToLogsV2"]["datasourceUid"] == "loki"

    derived = sources["loki"]["jsonData"]["derivedFields"]
    to_tempo = [d for d in derived if d.get("datasourceUid") == "tempo"]
    assert to_tempo, "no Loki derived field links to Tempo"
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    pattern = re.compile(to_tempo[0]["matcherRegex"])
    for line in (
        json.dumps({"event": "http.request", "trace_id": trace_id, "span_id": "00f067aa0ba902b7"}),
        '{"event":"http.request","trace_id":"' + trace_id + '"}',
    ):
        match = pattern.search(line)
        assert match and match.group(1) == trace_id, line


def test_grafana_dashboard_provider() -> None:
    providers = load_yaml(DASHBOARD_PROVIDERS)["providers"]
    assert providers and all(p["type"] == "file" and p["options"]["path"] for p in providers)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_grafana_dashboard(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] and dashboard["title"]
    assert dashboard["schemaVersion"] >= 36

    sources = provisioned_datasources()
    for key, value, parent in walk(dashboard):
        if key == "datasource" and isinstance(value, dict):
            uid = value.get("uid")
            if parent.get("builtIn") and uid in GRAFANA_BUILTIN_UIDS:
                continue
            assert uid in sources, f"datasource uid {uid!r} is not provisioned ({parent})"
            assert value.get("type") in (None, sources[uid]["type"]), value
        elif key == "datasource":
            pytest.fail(f"datasource must be referenced by uid, not {value!r}")
        elif key == "datasourceUid":
            assert value in sources, f"datasourceUid {value!r} is not provisioned"

    panels = list(all_panels(dashboard))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for panel in panels:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
        if panel["type"] != "row":
            assert panel.get("datasource", {}).get("uid") in sources, panel["title"]
            assert panel.get("targets"), f"{panel['title']}: no queries"

    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["job"]["datasource"]["uid"] == "prometheus"
    assert variables["trace_id"]["type"] == "textbox"

    # DuckDB timings carry exemplars so their points link to traces.
    duckdb_targets = [
        t
        for p in panels
        for t in p.get("targets", [])
        if "duckdb_query_duration_seconds" in t.get("expr", "")
    ]
    assert duckdb_targets and all(t.get("exemplar") is True for t in duckdb_targets)

    # A Loki logs panel filtered by the trace_id variable, and a trace id link to the logs.
    logs = [p for p in panels if p["type"] == "logs"]
    assert logs and all(p["datasource"]["uid"] == "loki" for p in logs)
    assert any("$trace_id" in t["expr"] for p in logs for t in p["targets"])
    links = [v for k, v, _ in walk(dashboard) if k == "url" and isinstance(v, str)]
    assert any("var-trace_id=${__value.raw}" in url for url in links)
