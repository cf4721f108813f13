"""Write ``k8s/prometheusrule.yaml`` (a Prometheus Operator ``PrometheusRule``) from
``prometheus/alerts.yml``, the one source of the alert rules (docker compose loads it as a rule
file). ``--runbook-base URL`` points every alert's ``runbook_url`` at your copy of
docs/operations.md instead of the placeholder (the part before ``#`` is replaced; the anchor stays):

    python deploy/observability/render_rules.py --runbook-base https://git.example.com/vt/docs/operations.md

deploy/observability/test_observability.py checks that the committed file is this script's output.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ALERTS = HERE / "prometheus" / "alerts.yml"
TARGET = HERE / "k8s" / "prometheusrule.yaml"
PLACEHOLDER_BASE = "https://github.com/your-org/voice-to-ticket/blob/main/docs/operations.md"
HEADER = """\
# GENERATED from prometheus/alerts.yml by render_rules.py: edit those, then run
#   python deploy/observability/render_rules.py [--runbook-base URL]
# Prometheus Operator selects rules by label (kube-prometheus-stack: its Helm release, e.g.
# `release: prometheus`): add that label in your kustomization if your ruleSelector needs one.
"""


def prometheus_rule(rules: dict[str, Any], runbook_base: str = PLACEHOLDER_BASE) -> dict[str, Any]:
    groups = copy.deepcopy(rules["groups"])
    for group in groups:
        for rule in group["rules"]:
            annotations = rule.get("annotations", {})
            if "runbook_url" in annotations:
                _, _, anchor = annotations["runbook_url"].partition("#")
                annotations["runbook_url"] = f"{runbook_base}#{anchor}"
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "voiceticket", "labels": {"app.kubernetes.io/part-of": "voiceticket"}},
        "spec": {"groups": groups},
    }


def render(runbook_base: str = PLACEHOLDER_BASE) -> str:
    rule = prometheus_rule(yaml.safe_load(ALERTS.read_text()), runbook_base)
    return HEADER + yaml.safe_dump(rule, sort_keys=False, allow_unicode=True, width=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runbook-base", default=PLACEHOLDER_BASE, help="URL of docs/operations.md")
    parser.add_argument("--output", type=Path, default=TARGET)
    args = parser.parse_args()
    args.output.write_text(render(args.runbook_base.rstrip("#")))


if __name__ == "__main__":
    main()
