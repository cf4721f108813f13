"""Offline checks of the observability artefacts: Prometheus scrapes what docker-compose runs, the
alert rules and the dashboard only query metrics the services export, every alert's runbook_url
points at an existing heading of docs/operations.md, the PrometheusRule is generated from the
rules, and the Kubernetes extras are what deploy/observability/kustomization.yaml installs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from prometheus_client import REGISTRY

import voiceticket_common.metrics  # noqa: F401 - registers the metrics in REGISTRY
import voiceticket_ingress.shedding  # noqa: F401 - and ingress's own (shedding)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import render_rules  # noqa: E402 - deploy/observability/render_rules.py

sys.path.remove(str(HERE))
REPO = HERE.parents[1]
PROMETHEUS = HERE / "prometheus"
DASHBOARD = HERE / "grafana" / "dashboards" / "voiceticket.json"
SERVICES = ("ingress", "config-api", "transcriber", "analyzer", "jira-writer", "notifier")


def exported_names() -> set[str]:
    """Every sample name our metrics can produce (``_total``, ``_bucket``, ``_count`` …)."""

    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "gauge": [""]}
    return {
        family.name + suffix
        for family in REGISTRY.collect()
        if family.name.startswith("voiceticket_")
        for suffix in suffixes.get(family.type, [""])
    }


def queried_names(text: str) -> set[str]:
    return set(re.findall(r"\bvoiceticket_[a-z_]+\b", text))


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_prometheus_scrapes_every_service_where_compose_serves_its_metrics() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in config["scrape_configs"]
    }
    services = compose()["services"]
    for name in SERVICES:
        assert name in services, f"docker-compose.yml has no service {name}"
        env = services[name].get("environment") or {}
        port = env.get("CONFIG_API_PORT") if name == "config-api" else env.get("VOICETICKET_PORT")
        port = port or env.get("VOICETICKET_HEALTH_PORT")  # consumers serve /metrics on the health port
        assert targets[name] == [f"{name}:{port}"], name
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]


def operations_anchors() -> set[str]:
    """The anchors GitHub gives docs/operations.md's headings."""
    return {
        re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", (REPO / "docs" / "operations.md").read_text(), re.M)
    }


def test_alerts_query_exported_metrics_and_link_existing_runbooks() -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    anchors = operations_anchors()
    names = exported_names()
    seen = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["alert"] not in seen
            seen.add(rule["alert"])
            assert queried_names(rule["expr"]) <= names, rule["alert"]
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}
            assert "runbook" not in rule["annotations"], "runbook_url (a URL), as Alertmanager expects"
            page, _, anchor = rule["annotations"]["runbook_url"].partition("#")
            assert page == render_rules.PLACEHOLDER_BASE and page.startswith("https://"), rule["alert"]
            assert page.endswith("/docs/operations.md") and anchor in anchors, rule["alert"]
    assert "VoiceticketDeadLettersGrowing" in seen and "VoiceticketConsumerLagHigh" in seen


def test_the_prometheusrule_is_generated_from_the_alerts() -> None:
    """k8s/prometheusrule.yaml is render_rules.py's output (regenerate it after editing alerts.yml),
    and --runbook-base moves every runbook_url, keeping its anchor."""
    committed = (HERE / "k8s" / "prometheusrule.yaml").read_text()
    assert committed == render_rules.render(), "run python deploy/observability/render_rules.py"
    rule = yaml.safe_load(committed)
    assert rule["spec"]["groups"] == yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    moved = yaml.safe_load(render_rules.render("https://docs.example.com/ops.md"))
    urls = [r["annotations"]["runbook_url"] for g in moved["spec"]["groups"] for r in g["rules"]]
    assert urls and all(u.startswith("https://docs.example.com/ops.md#") for u in urls)
    assert {u.split("#")[1] for u in urls} <= operations_anchors()


def test_the_dashboard_queries_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    assert exprs
    names = exported_names()
    for expr in exprs:
        assert queried_names(expr) <= names, expr
    queried = {n for e in exprs for n in queried_names(e)}
    for required in ("voiceticket_call_to_ticket_seconds_bucket", "voiceticket_consumer_lag",
                     "voiceticket_dead_letters_total", "voiceticket_estimated_cost_usd_total"):  # fmt: skip
        assert required in queried


def test_grafana_provisioning_points_at_the_dashboards() -> None:
    providers = yaml.safe_load((HERE / "grafana/provisioning/dashboards/dashboards.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"
    sources = yaml.safe_load((HERE / "grafana/provisioning/datasources/datasources.yml").read_text())
    assert {s["uid"] for s in sources["datasources"]} == {"prometheus", "jaeger"}


def test_kubernetes_extras_are_valid() -> None:
    """What `kubectl apply -k deploy/observability` installs (deploy/tests/test_manifests.py
    renders it and validates each object, the CRDs against their schemas)."""
    kustomization = yaml.safe_load((HERE / "kustomization.yaml").read_text())
    assert {"k8s/networkpolicy.yaml", "k8s/podmonitor.yaml", "k8s/prometheusrule.yaml"} == set(
        kustomization["resources"]
    )
    [policy] = [d for d in yaml.safe_load_all((HERE / "k8s/networkpolicy.yaml").read_text()) if d]
    kubernetes_validate.validate(policy, kubernetes_validate.latest_version(), strict=True)
    [monitor] = [d for d in yaml.safe_load_all((HERE / "k8s/podmonitor.yaml").read_text()) if d]
    assert monitor["kind"] == "PodMonitor"
    assert {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]} == {"http", "health"}
    for endpoint in monitor["spec"]["podMetricsEndpoints"]:  # job = the component, as the rules expect
        (relabel,) = endpoint["relabelings"]
        assert relabel["targetLabel"] == "job"
    # The dashboard, provisioned by Grafana's sidecar from a labelled ConfigMap.
    (generator,) = kustomization["configMapGenerator"]
    assert generator["files"] == ["grafana/dashboards/voiceticket.json"]
    assert generator["options"]["labels"]["grafana_dashboard"] == "1"
    assert generator["options"]["disableNameSuffixHash"] is True


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_the_rules() -> None:
    subprocess.run(["promtool", "check", "rules", str(PROMETHEUS / "alerts.yml")], check=True)


def test_compose_prometheus_and_grafana_mount_what_exists() -> None:
    override = compose()
    for name in ("prometheus", "grafana"):
        for volume in override["services"][name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), volume
        for port in override["services"][name]["ports"]:
            assert port.startswith("127.0.0.1:"), "published ports bind to localhost only"
    assert "jaeger" in compose()["services"], "grafana's Jaeger data source needs the jaeger service"
