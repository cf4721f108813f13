"""Offline checks of the deployment artefacts: Kubernetes manifests, docker-compose.yml, Dockerfile.

The kustomizations are rendered by a small renderer below (resources, components, generated
ConfigMaps with kustomize's content hash and the references to them, strategic merge patches
including ``$patch: delete``, JSON 6902 ``replace`` patches, ``images:``, ``namespace:``), so no
binary is needed; where ``kustomize`` or ``kubectl`` exists, a test checks that the renderer
agrees with it. Core objects are validated against the Kubernetes OpenAPI schemas shipped by
``kubernetes-validate`` (strict); KEDA's and the Prometheus Operator's objects against JSON
schemas written from those projects' documented fields (deploy/tests/crd-schemas).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import importlib
import inspect
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pydantic_settings import BaseSettings

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OBSERVABILITY = REPO / "deploy" / "observability"
CRD_SCHEMAS = Path(__file__).resolve().parent / "crd-schemas"
OVERLAYS = ["overlays/production", "overlays/dev", "overlays/no-keda", "overlays/expose-config-api"]
TARGETS = ["base", *OVERLAYS]
K8S_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
MODULES = {
    "ingress": "voiceticket_ingress",
    "transcriber": "voiceticket_transcriber",
    "analyzer": "voiceticket_analyzer",
    "jira-writer": "voiceticket_jira_writer",
    "notifier": "voiceticket_notifier",
    "config-api": "voiceticket_config_api",
}
WORKERS = ["transcriber", "analyzer", "jira-writer", "notifier"]
STATEFUL = ["config-api", *WORKERS]
SECRET_NAME = re.compile(r"TOKEN|KEY|PASSWORD|SECRET")
CLUSTER_SCOPED = {"Namespace"}


# --- the renderer --------------------------------------------------------------------------
MERGE_KEYS = {  # strategic merge keys of the lists our patches touch
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}
HASH_MARK = "voiceticket.test/needs-hash"  # the renderer's own bookkeeping, removed at the end


def load_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def strategic_merge(target: dict, patch: dict) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            strategic_merge(target[key], value)
        elif isinstance(value, list) and key in MERGE_KEYS and isinstance(target.get(key), list):
            # Like kustomize: the patch's elements first (merged), then the target's others.
            merge_key = MERGE_KEYS[key]
            rest = {t.get(merge_key): t for t in target[key]}
            merged = []
            for item in value:
                match = rest.pop(item.get(merge_key), None)
                if match is None:
                    merged.append(copy.deepcopy(item))
                else:
                    strategic_merge(match, item)
                    merged.append(match)
            target[key] = merged + list(rest.values())
        else:
            target[key] = copy.deepcopy(value)


def json6902(target: dict, ops: list[dict]) -> None:
    for op in ops:
        assert op["op"] == "replace", f"the test renderer supports `replace` only, not {op['op']}"
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        node = target
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = copy.deepcopy(op["value"])
        else:
            assert last in node, f"replace of a missing {op['path']}"
            node[last] = copy.deepcopy(op["value"])


def set_image(image: str, rule: dict) -> str:
    name, _, digest = image.partition("@")
    tag = ""
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    if name != rule["name"]:
        return image
    name = rule.get("newName", name)
    tag = str(rule.get("newTag", tag))
    digest = rule.get("digest", digest)
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def pod_specs(obj: dict) -> list[dict]:
    if obj["kind"] == "CronJob":
        return [obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
    return [obj["spec"]["template"]["spec"]] if obj["kind"] in {"Deployment", "Job"} else []


def pod_template(obj: dict) -> dict:
    spec = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
    return spec["template"]


def read_env_file(path: Path) -> dict[str, str]:
    """As kustomize reads ``envs:`` files: KEY=VALUE, the value verbatim, ``#`` lines skipped."""
    data = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path}: {line!r} is not KEY=VALUE"
            data[key.strip()] = value
    return data


def configmap_hash(data: dict[str, str]) -> str:
    """kustomize's name suffix of a generated ConfigMap (api/hasher: sha256 of the JSON encoding
    Go's encoding/json gives {kind, name: "", data}, its first 10 hex digits with 0,1,3,a,e
    replaced so that the suffix is never a number or a word)."""
    encoded = json.dumps(
        {"data": data, "kind": "ConfigMap", "name": ""}, separators=(",", ":"), sort_keys=True
    )
    encoded = encoded.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    digest = hashlib.sha256(encoded.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def generate_configmaps(directory: Path, generators: list[dict], objects: list[dict]) -> None:
    for gen in generators:
        assert set(gen) <= {"name", "envs", "files", "behavior", "options"}, gen
        data: dict[str, str] = {}
        for env in gen.get("envs", []):
            data |= read_env_file(directory / env)
        for file in gen.get("files", []):
            data[Path(file).name] = (directory / file).read_text()
        behavior = gen.get("behavior", "create")
        if behavior == "merge":
            (existing,) = [
                o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == gen["name"]
            ]
            existing["data"] |= data
            continue
        assert behavior == "create", behavior
        options = gen.get("options", {})
        metadata: dict = {"name": gen["name"]}
        if options.get("annotations"):
            metadata["annotations"] = dict(options["annotations"])
        if options.get("labels"):
            metadata["labels"] = dict(options["labels"])
        if not options.get("disableNameSuffixHash"):
            metadata.setdefault("annotations", {})[HASH_MARK] = "true"
        objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data})


def apply_patches(directory: Path, patches: list[dict], objects: list[dict]) -> None:
    for ref in patches:
        if "target" in ref:  # an inline JSON 6902 patch
            assert set(ref) == {"target", "patch"}, ref
            target = ref["target"]
            matches = [
                o for o in objects if o["kind"] == target["kind"] and o["metadata"]["name"] == target["name"]
            ]
            assert len(matches) == 1, f"no single target for {target}"
            json6902(matches[0], yaml.safe_load(ref["patch"]))
            continue
        assert set(ref) == {"path"}, "patches: files or inline JSON 6902 with a target"
        for patch in load_docs(directory / ref["path"]):
            ident = (patch["apiVersion"], patch["kind"], patch["metadata"]["name"])
            matches = [o for o in objects if (o["apiVersion"], o["kind"], o["metadata"]["name"]) == ident]
            assert len(matches) == 1, f"{ref['path']}: no single target for {ident}"
            if patch.get("$patch") == "delete":
                objects.remove(matches[0])
            else:
                strategic_merge(matches[0], {f: v for f, v in patch.items() if f != "metadata"})


KUSTOMIZATION_FIELDS = {
    "apiVersion", "kind", "resources", "components", "configMapGenerator", "patches", "images", "namespace",
}  # fmt: skip


def accumulate(directory: Path, objects: list[dict] | None = None) -> list[dict]:
    """One kustomization (or component) applied to ``objects``, in kustomize's order: resources,
    components, generators, patches, images, namespace."""

    k = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(k) - KUSTOMIZATION_FIELDS
    assert not unsupported, f"{directory}: the test renderer does not support {unsupported}"
    objects = [] if objects is None else objects
    for entry in k.get("resources", []):
        path = directory / entry
        objects += accumulate(path) if path.is_dir() else load_docs(path)
    for component in k.get("components", []):
        accumulate(directory / component, objects)
    generate_configmaps(directory, k.get("configMapGenerator", []), objects)
    apply_patches(directory, k.get("patches", []), objects)
    for rule in k.get("images", []):
        for obj in objects:
            for pod in pod_specs(obj):
                for c in pod.get("initContainers", []) + pod["containers"]:
                    c["image"] = set_image(c["image"], rule)
    if "namespace" in k:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = k["namespace"]
    return objects


def config_refs(pod: dict) -> list[dict]:
    """Every place a pod names a ConfigMap (the dicts whose ``name`` kustomize rewrites)."""
    refs = []
    for c in pod.get("initContainers", []) + pod["containers"]:
        refs += [e["configMapRef"] for e in c.get("envFrom", []) if "configMapRef" in e]
        refs += [
            e["valueFrom"]["configMapKeyRef"]
            for e in c.get("env", [])
            if "configMapKeyRef" in e.get("valueFrom", {})
        ]
    refs += [v["configMap"] for v in pod.get("volumes", []) if "configMap" in v]
    return refs


def render(directory: Path) -> list[dict]:
    objects = accumulate(directory)
    for cm in [o for o in objects if o["kind"] == "ConfigMap"]:
        annotations = cm["metadata"].get("annotations", {})
        if annotations.pop(HASH_MARK, None) is None:
            continue
        if not annotations:
            del cm["metadata"]["annotations"]
        old = cm["metadata"]["name"]
        cm["metadata"]["name"] = new = f"{old}-{configmap_hash(cm['data'])}"
        for obj in objects:
            for pod in pod_specs(obj):
                for ref in config_refs(pod):
                    if ref["name"] == old:
                        ref["name"] = new
    return objects


RENDERED = {target: render(K8S / target) for target in TARGETS}
RENDERED_OBSERVABILITY = render(OBSERVABILITY)


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def all_targets(fn):  # noqa: ANN001, ANN201 - decorator
    return pytest.mark.parametrize("target", TARGETS)(fn)


def overlays(fn):  # noqa: ANN001, ANN201 - decorator
    return pytest.mark.parametrize("target", OVERLAYS)(fn)


def workloads(objects: list[dict]) -> list[dict]:
    return [o for o in objects if o["kind"] in {"Deployment", "CronJob", "Job"}]


def shared_config(objects: list[dict]) -> dict[str, str]:
    (cm,) = [
        c for c in by_kind(objects, "ConfigMap") if c["metadata"]["name"].startswith("voiceticket-shared")
    ]
    return cm["data"]


# --- schemas -------------------------------------------------------------------------------
CRD_VALIDATORS = {
    (schema["properties"]["apiVersion"]["const"], schema["properties"]["kind"]["const"]): jsonschema.Draft202012Validator(schema)
    for schema in (json.loads(p.read_text()) for p in sorted(CRD_SCHEMAS.glob("*.json")))
}  # fmt: skip


def validate(obj: dict, version: str) -> None:
    key = (obj["apiVersion"], obj["kind"])
    if key in CRD_VALIDATORS:
        errors = sorted(CRD_VALIDATORS[key].iter_errors(obj), key=lambda e: list(e.absolute_path))
        assert not errors, f"{key} {obj['metadata']['name']}: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors
        )
    else:
        kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("version", K8S_VERSIONS)
@all_targets
def test_manifests_validate_against_kubernetes_and_crd_schemas(target: str, version: str) -> None:
    kinds = set()
    for obj in RENDERED[target]:
        validate(obj, version)
        kinds.add(obj["kind"])
    assert {"Deployment", "NetworkPolicy", "PodDisruptionBudget", "Ingress", "Job", "CronJob"} <= kinds
    if target != "base":
        assert "Namespace" in kinds


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_observability_objects_validate(version: str) -> None:
    kinds = {o["kind"] for o in RENDERED_OBSERVABILITY}
    assert kinds == {"PodMonitor", "PrometheusRule", "NetworkPolicy", "ConfigMap"}
    for obj in RENDERED_OBSERVABILITY:
        validate(obj, version)


def test_the_crd_schemas_reject_what_the_crds_would() -> None:
    """The hand-written schemas are strict: a typo, a missing field or a bad value fails."""
    (so,) = [o for o in RENDERED["overlays/production"] if o["metadata"]["name"] == "voiceticket-analyzer" and o["kind"] == "ScaledObject"]  # fmt: skip
    (rule,) = by_kind(RENDERED_OBSERVABILITY, "PrometheusRule")
    (monitor,) = by_kind(RENDERED_OBSERVABILITY, "PodMonitor")
    broken = []
    for obj, edit in [
        (so, lambda o: o["spec"].update(maxReplicas=3)),  # the HPA's name, not KEDA's
        (so, lambda o: o["spec"].pop("scaleTargetRef")),
        (so, lambda o: o["spec"]["triggers"][0]["metadata"].pop("consumerGroup")),
        (so, lambda o: o["spec"]["triggers"][0]["metadata"].update(lagThreshold=5)),  # must be a string
        (so, lambda o: o["spec"]["triggers"][0]["metadata"].update(offsetResetPolicy="oldest")),
        (rule, lambda o: o["spec"]["groups"][0]["rules"][0].update(record="x")),  # alert and record
        (rule, lambda o: o["spec"]["groups"][0]["rules"][0].pop("expr")),
        (rule, lambda o: o["spec"]["groups"][0]["rules"][0].update(**{"for": "2 minutes"})),
        (monitor, lambda o: o["spec"]["podMetricsEndpoints"][0].update(ports="http")),
        (monitor, lambda o: o["spec"].pop("selector")),
    ]:
        obj = copy.deepcopy(obj)
        edit(obj)
        with pytest.raises(AssertionError):
            validate(obj, K8S_VERSIONS[-1])
        broken.append(obj["kind"])
    assert set(broken) == {"ScaledObject", "PrometheusRule", "PodMonitor"}


def kustomize_build(directory: Path) -> list[dict]:
    if shutil.which("kustomize"):
        cmd = ["kustomize", "build", str(directory)]
    elif shutil.which("kubectl"):
        cmd = ["kubectl", "kustomize", str(directory)]
    else:
        pytest.skip("neither kustomize nor kubectl is installed")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.mark.parametrize("target", [*TARGETS, "observability"])
def test_renderer_agrees_with_kustomize(target: str) -> None:
    if target == "observability":
        ours, directory = RENDERED_OBSERVABILITY, OBSERVABILITY
    else:
        ours, directory = RENDERED[target], K8S / target
    theirs = kustomize_build(directory)
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    assert sorted(ours, key=key) == sorted(theirs, key=key)


# --- workloads -----------------------------------------------------------------------------
@all_targets
def test_every_service_is_deployed_from_one_image(target: str) -> None:
    deployments = by_kind(RENDERED[target], "Deployment")
    modules = {d["spec"]["template"]["spec"]["containers"][0]["args"][0] for d in deployments}
    assert modules == set(MODULES.values())
    images = {c["image"] for w in workloads(RENDERED[target]) for p in pod_specs(w) for c in p["containers"]}
    assert len(images) == 1, images
    if target != "base":
        (image,) = images
        assert image != "voiceticket" and not image.endswith(":latest"), image


def test_production_pins_a_registry_image() -> None:
    d = by_kind(RENDERED["overlays/production"], "Deployment")[0]
    image = d["spec"]["template"]["spec"]["containers"][0]["image"]
    assert "/" in image and ":" in image.rsplit("/", 1)[-1], image


def assert_restricted(name: str, pod: dict) -> None:
    """Pod Security Standards, "restricted" profile (and readOnlyRootFilesystem on top)."""
    for forbidden in ("hostNetwork", "hostPID", "hostIPC", "hostUsers"):
        assert not pod.get(forbidden), (name, forbidden)
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True and psc.get("runAsUser", 1) != 0, name
    assert psc["seccompProfile"]["type"] == "RuntimeDefault", name
    assert pod["automountServiceAccountToken"] is False, name
    for volume in pod.get("volumes", []):
        assert set(volume) - {"name"} <= {"emptyDir", "configMap", "secret", "projected"}, (name, volume)
    for c in pod.get("initContainers", []) + pod["containers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False, name
        assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add"), name
        assert sc["readOnlyRootFilesystem"] is True, name
        assert not sc.get("privileged") and sc.get("runAsUser", 1) != 0, name
        assert "seccompProfile" not in sc or sc["seccompProfile"]["type"] == "RuntimeDefault", name
        assert not [p for p in c.get("ports", []) if "hostPort" in p], name
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][bound]), (name, c["name"], bound)


@all_targets
def test_every_workload_is_restricted_and_bounded(target: str) -> None:
    found = set()
    for w in workloads(RENDERED[target]):
        for pod in pod_specs(w):
            assert_restricted(w["metadata"]["name"], pod)
        found.add(w["kind"])
    assert found == {"Deployment", "CronJob", "Job"}


@all_targets
def test_deployments_are_probed(target: str) -> None:
    for d in by_kind(RENDERED[target], "Deployment"):
        name, pod = d["metadata"]["name"], d["spec"]["template"]["spec"]
        for c in pod["containers"]:
            ports = {p["name"] for p in c["ports"]}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert c[probe]["httpGet"]["port"] in ports, (name, probe)
            assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", name
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", name


@overlays
def test_the_namespace_enforces_pod_security_restricted(target: str) -> None:
    objects = RENDERED[target]
    (ns,) = by_kind(objects, "Namespace")
    namespace = yaml.safe_load((K8S / target / "kustomization.yaml").read_text())["namespace"]
    assert ns["metadata"]["name"] == namespace
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {namespace}
    for mode in ("enforce", "audit", "warn"):
        assert ns["metadata"]["labels"][f"pod-security.kubernetes.io/{mode}"] == "restricted", mode


@all_targets
def test_secrets_are_references_only(target: str) -> None:
    objects = RENDERED[target]
    assert not by_kind(objects, "Secret"), "secret values must not be committed"
    for cm in by_kind(objects, "ConfigMap"):
        assert not [k for k in cm["data"] if SECRET_NAME.search(k)], cm["metadata"]["name"]
    for w in workloads(objects):
        for pod in pod_specs(w):
            for c in pod["containers"]:
                for env in c.get("env", []):
                    if SECRET_NAME.search(env["name"]) or env["name"].endswith("DATABASE_URL"):
                        assert "value" not in env, (w["metadata"]["name"], env["name"])
                        assert "secretKeyRef" in env["valueFrom"], (w["metadata"]["name"], env["name"])


def test_every_referenced_secret_is_documented() -> None:
    """Operators create the secrets from docs/deployment.md: each name and key must be there."""

    doc = (REPO / "docs" / "deployment.md").read_text()
    refs = {
        (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for w in workloads(RENDERED["base"])
        for pod in pod_specs(w)
        for c in pod["containers"]
        for e in c.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert len(refs) >= 10
    for name, key in refs:
        assert f"secret generic {name}" in doc, name
        assert f"--from-literal={key}=" in doc, (name, key)


def settings_fields(module: str) -> set[str]:
    mod = importlib.import_module(f"{module}.settings")
    classes = [
        c
        for _, c in inspect.getmembers(mod, inspect.isclass)
        if issubclass(c, BaseSettings) and c.__module__ == mod.__name__
    ]
    assert len(classes) == 1, module
    prefix = classes[0].model_config.get("env_prefix", "")
    return {prefix + f.upper() for f in classes[0].model_fields}


def assert_env_names_known(module: str, names: set[str]) -> None:
    known = settings_fields(module) | {"OTEL_EXPORTER_OTLP_ENDPOINT"}
    assert names <= known, f"{module}: unknown settings {sorted(names - known)}"


@all_targets
def test_env_names_match_the_services_settings(target: str) -> None:
    shared = set(shared_config(RENDERED[target]))
    for d in by_kind(RENDERED[target], "Deployment"):
        c = d["spec"]["template"]["spec"]["containers"][0]
        names = {e["name"] for e in c.get("env", [])}
        if c.get("envFrom"):
            names |= shared
        assert_env_names_known(c["args"][0], names)


@all_targets
def test_the_shared_configmap_is_generated_with_a_content_hash(target: str) -> None:
    """configMapGenerator: the name carries the content's hash and every reference follows it, so
    a changed setting is a new ConfigMap name in every pod template, which rolls the pods."""
    objects = RENDERED[target]
    data = shared_config(objects)
    (name,) = [c["metadata"]["name"] for c in by_kind(objects, "ConfigMap")]
    assert name == f"voiceticket-shared-{configmap_hash(data)}"
    assert configmap_hash(data | {"VOICETICKET_LOG_LEVEL": "WARNING"}) != configmap_hash(data)
    readers = 0
    for w in workloads(objects):
        for pod in pod_specs(w):
            for ref in config_refs(pod):
                assert ref["name"] == name, (w["metadata"]["name"], ref)
                readers += 1
    assert readers >= 9  # the five services reading it whole, config-api one key, the purges


@overlays
def test_the_overlays_settings_are_valid_for_the_services(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every consumer's settings class accepts the shared ConfigMap as the overlay renders it
    (e.g. production refuses replication factor 1 for topics it creates)."""
    data = shared_config(RENDERED[target])
    for service in WORKERS:
        mod = importlib.import_module(f"{MODULES[service]}.settings")
        (cls,) = [
            c for _, c in inspect.getmembers(mod, inspect.isclass)
            if issubclass(c, BaseSettings) and c.__module__ == mod.__name__
        ]  # fmt: skip
        for name in [n for n in os.environ if n.startswith("VOICETICKET_")]:
            monkeypatch.delenv(name)
        secrets_ = {
            "VOICETICKET_CONFIG_API_TOKEN": "x" * 32,
            "VOICETICKET_CALLBACK_CONTEXT_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        }
        for key, value in (data | secrets_).items():
            monkeypatch.setenv(key, value)
        settings = cls(_env_file=None)
        assert settings.kafka_bootstrap_servers == data["VOICETICKET_KAFKA_BOOTSTRAP_SERVERS"]


@all_targets
def test_selectors_and_targets_resolve(target: str) -> None:
    objects = RENDERED[target]
    deployments = {d["metadata"]["name"]: d for d in by_kind(objects, "Deployment")}
    pod_labels = {n: d["spec"]["template"]["metadata"]["labels"] for n, d in deployments.items()}

    def selects(selector: dict) -> set[str]:
        labels = selector.get("matchLabels", {})
        return {n for n, lab in pod_labels.items() if labels.items() <= lab.items()}

    for d in deployments.values():
        assert selects(d["spec"]["selector"]) == {d["metadata"]["name"]}
        assert d["spec"]["template"]["spec"]["serviceAccountName"] in {
            s["metadata"]["name"] for s in by_kind(objects, "ServiceAccount")
        }
    services = {s["metadata"]["name"]: s for s in by_kind(objects, "Service")}
    assert set(services) == {"voiceticket-ingress", "voiceticket-config-api"}
    for name, svc in services.items():
        assert selects({"matchLabels": svc["spec"]["selector"]}) == {name}
        ports = {p["name"] for p in deployments[name]["spec"]["template"]["spec"]["containers"][0]["ports"]}
        assert {p["targetPort"] for p in svc["spec"]["ports"]} <= ports
    for w in workloads(objects):  # no Deployment's selector takes a Job's or CronJob's pods
        if w["kind"] != "Deployment":
            labels = pod_template(w)["metadata"]["labels"]
            for d in deployments.values():
                assert not d["spec"]["selector"]["matchLabels"].items() <= labels.items()


@all_targets
def test_every_deployment_has_a_disruption_budget(target: str) -> None:
    objects = RENDERED[target]
    deployments = {d["metadata"]["name"]: d for d in by_kind(objects, "Deployment")}
    covered: dict[str, int] = {}
    for pdb in by_kind(objects, "PodDisruptionBudget"):
        labels = pdb["spec"]["selector"]["matchLabels"]
        chosen = [n for n, d in deployments.items() if labels.items() <= d["spec"]["template"]["metadata"]["labels"].items()]  # fmt: skip
        assert len(chosen) == 1, (pdb["metadata"]["name"], chosen)
        covered[chosen[0]] = covered.get(chosen[0], 0) + 1
        # maxUnavailable: a one-replica Deployment can still be drained; never 0 (blocks drains)
        assert pdb["spec"].get("maxUnavailable") == 1 and "minAvailable" not in pdb["spec"]
    assert covered == {n: 1 for n in deployments}


@all_targets
def test_scaling_keda_on_lag_or_hpa_fallback(target: str) -> None:
    objects = RENDERED[target]
    deployments = {d["metadata"]["name"]: d for d in by_kind(objects, "Deployment")}
    config = shared_config(objects)
    partitions = int(config["VOICETICKET_KAFKA_PARTITIONS"])
    namespace = config.get("VOICETICKET_KAFKA_TOPIC_NAMESPACE", "")
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in by_kind(objects, "HorizontalPodAutoscaler")}
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in by_kind(objects, "ScaledObject")}
    workers = {f"voiceticket-{s}" for s in WORKERS}
    assert not set(hpas) & set(scaled), "one autoscaler per Deployment"
    assert "voiceticket-ingress" in hpas and "voiceticket-config-api" not in hpas | scaled
    keda = target in {"base", "overlays/production", "overlays/expose-config-api"}
    assert (set(scaled) if keda else set(hpas) - {"voiceticket-ingress"}) == workers
    for name in set(hpas) | set(scaled):
        assert "replicas" not in deployments[name]["spec"], f"{name}: replicas belong to the autoscaler"
    for name, hpa in hpas.items():
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        if name != "voiceticket-ingress":
            assert hpa["spec"]["maxReplicas"] <= partitions, name
    for service in WORKERS if keda else []:
        so = scaled[f"voiceticket-{service}"]["spec"]
        assert so["scaleTargetRef"]["kind"] == "Deployment"
        assert 1 <= so["minReplicaCount"] <= so["maxReplicaCount"] <= partitions, service
        described = importlib.import_module(f"{MODULES[service]}.bootstrap").SERVICE
        topics = [f"{namespace}.{c.topic()}" if namespace else c.topic() for c in described.consumes]
        assert [t["type"] for t in so["triggers"]] == ["kafka"] * len(topics)
        assert [t["metadata"]["topic"] for t in so["triggers"]] == topics, service
        for trigger in so["triggers"]:
            meta = trigger["metadata"]
            assert meta["consumerGroup"] == described.group, service
            assert meta["bootstrapServers"] == config["VOICETICKET_KAFKA_BOOTSTRAP_SERVERS"], service
            assert int(meta["lagThreshold"]) >= 1
            assert meta.get("allowIdleConsumers", "false") == "false"


# --- jobs ----------------------------------------------------------------------------------
@all_targets
def test_the_migration_job_upgrades_each_services_own_database(target: str) -> None:
    import typer.main

    from voiceticket.cli import SCHEMA_OWNERS, app

    objects = RENDERED[target]
    (job,) = by_kind(objects, "Job")
    pod = pod_specs(job)[0]
    assert pod["restartPolicy"] in {"OnFailure", "Never"} and job["spec"]["backoffLimit"] >= 1
    deployments = {d["metadata"]["name"]: d for d in by_kind(objects, "Deployment")}
    # The variable the command reads the DSN from, as the CLI declares it.
    upgrade = typer.main.get_command(app).commands["db"].commands["upgrade"]  # type: ignore[attr-defined]
    (envvar,) = [p.envvar for p in upgrade.params if p.name == "database_url"]
    upgraded = set()
    for c in pod["containers"]:
        assert c["args"][:3] == ["voiceticket", "db", "upgrade"], c["args"]
        service = c["args"][3]
        assert service in SCHEMA_OWNERS
        (env,) = c["env"]
        assert env["name"] == envvar
        deployed = deployments[f"voiceticket-{service}"]["spec"]["template"]["spec"]["containers"][0]
        deployed_db = next(e for e in deployed["env"] if e["name"].endswith("DATABASE_URL"))
        assert env["valueFrom"] == deployed_db["valueFrom"], service
        upgraded.add(service)
    assert upgraded == set(SCHEMA_OWNERS) == set(STATEFUL)


@all_targets
def test_every_stateful_service_has_a_hardened_purge_cronjob(target: str) -> None:
    objects = RENDERED[target]
    cronjobs = {c["metadata"]["name"]: c for c in by_kind(objects, "CronJob")}
    assert set(cronjobs) == {f"voiceticket-{s}-purge" for s in STATEFUL}
    deployments = {d["metadata"]["name"]: d for d in by_kind(objects, "Deployment")}
    shared = set(shared_config(objects))
    for service in STATEFUL:
        cj = cronjobs[f"voiceticket-{service}-purge"]
        assert cj["spec"]["concurrencyPolicy"] == "Forbid"
        (pod,) = pod_specs(cj)
        (c,) = pod["containers"]
        assert c["args"] == [MODULES[service], "purge"]
        deployed = deployments[f"voiceticket-{service}"]["spec"]["template"]["spec"]["containers"][0]
        assert c["image"] == deployed["image"], "the services' own image"
        assert pod["restartPolicy"] == "Never"
        assert_restricted(cj["metadata"]["name"], pod)
        for env in c.get("env", []):
            if SECRET_NAME.search(env["name"]) or env["name"].endswith("DATABASE_URL"):
                assert "secretKeyRef" in env["valueFrom"], (service, env["name"])
        names = {e["name"] for e in c.get("env", [])} | (shared if c.get("envFrom") else set())
        assert_env_names_known(MODULES[service], names)
        # Each purges the database its service owns.
        db = next(e for e in c["env"] if e["name"].endswith("DATABASE_URL"))
        deployed_db = next(e for e in deployed["env"] if e["name"].endswith("DATABASE_URL"))
        assert db == deployed_db


# --- network -------------------------------------------------------------------------------
# What each workload reaches, from its code (services/*/src): the bus (Kafka), its own database,
# config-api (RuntimeConfigClient / the call-key vault), HTTPS providers (the egress-checked
# clients: Twilio media and Messages, OpenAI, Atlassian; config-api deletes recordings at
# Twilio on erasure; jira-writer's purge deletes recordings due). Every pod: DNS and the collector.
EGRESS = {
    "voiceticket-ingress": {"kafka", "config-api"},
    "voiceticket-transcriber": {"kafka", "postgres", "config-api", "https"},
    "voiceticket-analyzer": {"kafka", "postgres", "config-api", "https"},
    "voiceticket-jira-writer": {"kafka", "postgres", "config-api", "https"},
    "voiceticket-notifier": {"kafka", "postgres", "config-api", "https"},
    "voiceticket-config-api": {"kafka", "postgres", "https"},
    "voiceticket-transcriber-purge": {"postgres"},
    "voiceticket-analyzer-purge": {"postgres"},
    "voiceticket-jira-writer-purge": {"postgres", "config-api", "https"},
    "voiceticket-notifier-purge": {"postgres"},
    "voiceticket-config-api-purge": {"postgres"},
    "voiceticket-db-upgrade": {"postgres"},
}
EVERY_POD = {"dns", "otlp"}
MUST_EXCLUDE = [
    "169.254.0.0/16",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "127.0.0.0/8",
]
MUST_EXCLUDE_V6 = ["fc00::/7", "fe80::/10", "::1/128"]


def selects_pod(selector: dict, labels: dict[str, str]) -> bool:
    if not labels.items() >= selector.get("matchLabels", {}).items():
        return False
    for expr in selector.get("matchExpressions", []):
        value = labels.get(expr["key"])
        ok = {
            "In": value in expr.get("values", []),
            "NotIn": value not in expr.get("values", []),
            "Exists": value is not None,
            "DoesNotExist": value is None,
        }[expr["operator"]]
        if not ok:
            return False
    return True


def egress_kind(rule: dict) -> str:
    """What one egress rule of ours is for, judged by its peers and ports."""
    ports = {(p.get("protocol", "TCP"), p["port"]) for p in rule["ports"]}
    (peer_types,) = {frozenset(k for k in peer) for peer in rule["to"]}
    if peer_types == {"ipBlock"}:
        assert ports == {("TCP", 443)}, "public addresses on 443 only"
        return "https"
    namespace = next((p["namespaceSelector"]["matchLabels"].get("kubernetes.io/metadata.name") for p in rule["to"] if "namespaceSelector" in p), None)  # fmt: skip
    kinds = {
        ("kube-system", frozenset({("UDP", 53), ("TCP", 53)})): "dns",
        ("kafka", frozenset({("TCP", 9092), ("TCP", 9093)})): "kafka",
        ("postgres", frozenset({("TCP", 5432)})): "postgres",
        ("observability", frozenset({("TCP", 4318), ("TCP", 4317)})): "otlp",
        (None, frozenset({("TCP", 8085)})): "config-api",
    }
    kind = kinds.get((namespace, frozenset(ports)))
    assert kind, f"unexpected egress rule {rule}"
    if kind == "config-api":
        (peer,) = rule["to"]
        assert peer == {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "voiceticket-config-api"}}}
    return kind


@all_targets
def test_egress_is_denied_by_default_and_allowed_per_workload(target: str) -> None:
    objects = RENDERED[target]
    policies = by_kind(objects, "NetworkPolicy")
    deny = [p for p in policies if p["spec"]["podSelector"] == {} and not p["spec"].get("ingress") and not p["spec"].get("egress")]  # fmt: skip
    assert deny and set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    dev_local = [p for p in policies if p["metadata"]["name"] == "voiceticket-dev-egress-local-backends"]
    assert bool(dev_local) == (target == "overlays/dev"), "in-namespace backends: dev only"
    seen = set()
    for w in workloads(objects):
        name = w["metadata"]["name"]
        labels = pod_template(w)["metadata"]["labels"]
        allowed = set()
        for policy in policies:
            if policy in dev_local or not selects_pod(policy["spec"]["podSelector"], labels):
                continue
            assert "Egress" in policy["spec"]["policyTypes"] or not policy["spec"].get("egress")
            allowed |= {egress_kind(rule) for rule in policy["spec"].get("egress", [])}
        assert allowed == EGRESS[name] | EVERY_POD, (name, sorted(allowed ^ (EGRESS[name] | EVERY_POD)))
        seen.add(name)
    assert seen == set(EGRESS)


@all_targets
def test_https_egress_reaches_public_addresses_only(target: str) -> None:
    (policy,) = [p for p in by_kind(RENDERED[target], "NetworkPolicy") if p["metadata"]["name"] == "voiceticket-egress-https-public"]  # fmt: skip
    (rule,) = policy["spec"]["egress"]
    blocks = {peer["ipBlock"]["cidr"]: peer["ipBlock"].get("except", []) for peer in rule["to"]}
    assert set(blocks) == {"0.0.0.0/0", "::/0"}
    assert set(MUST_EXCLUDE) <= set(blocks["0.0.0.0/0"])
    assert set(MUST_EXCLUDE_V6) <= set(blocks["::/0"])

    def allowed(address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(
            ip in ipaddress.ip_network(cidr) and not any(ip in ipaddress.ip_network(e) for e in excepted)
            for cidr, excepted in blocks.items()
            if ipaddress.ip_network(cidr).version == ip.version
        )

    for address in ["169.254.169.254", "10.96.0.1", "172.20.1.1", "192.168.1.1", "100.64.0.10", "127.0.0.1",
                    "fd00:ec2::254", "fe80::1", "::1", "::ffff:169.254.169.254"]:  # fmt: skip
        assert not allowed(address), address
    for address in ["54.172.60.1", "162.159.140.1", "2606:4700::1"]:  # public: Twilio, OpenAI, ...
        assert allowed(address), address


@all_targets
def test_ingress_policies(target: str) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in by_kind(RENDERED[target], "NetworkPolicy")}
    controller = policies["voiceticket-ingress-from-controller"]
    assert controller["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "voiceticket-ingress"}
    assert "namespaceSelector" in controller["ingress"][0]["from"][0]
    capi = policies["voiceticket-config-api-from-services"]
    (source,) = capi["ingress"][0]["from"]
    (expr,) = source["podSelector"]["matchExpressions"]
    callers = {n for n, needs in EGRESS.items() if "config-api" in needs}
    assert expr["operator"] == "In" and set(expr["values"]) == callers
    assert "namespaceSelector" not in source
    exposed = "voiceticket-config-api-from-internal-controller" in policies
    assert exposed == (target == "overlays/expose-config-api")
    for name, spec in policies.items():  # nothing else admits traffic from outside the namespace
        if spec.get("ingress") and name not in {"voiceticket-ingress-from-controller", "voiceticket-config-api-from-internal-controller"}:  # fmt: skip
            assert all("namespaceSelector" not in peer and "ipBlock" not in peer for r in spec["ingress"] for peer in r["from"]), name  # fmt: skip


# --- edges ---------------------------------------------------------------------------------
def webhook_paths() -> set[str]:
    """The routes ingress serves under /twilio/, from the app itself."""
    from voiceticket_ingress.app import create_app
    from voiceticket_ingress.settings import IngressSettings

    settings = IngressSettings(_env_file=None, public_base_url="https://voice.example.com", callback_context_key=base64.urlsafe_b64encode(os.urandom(32)).decode())  # type: ignore[call-arg]  # fmt: skip
    app = create_app(settings, publisher=None, config=None)  # type: ignore[arg-type]

    def paths(routes: list) -> set[str]:  # FastAPI includes routers lazily: walk them too
        found = set()
        for r in routes:
            if hasattr(r, "original_router"):
                found |= {r.include_context.prefix + p for p in paths(r.original_router.routes)}
            elif hasattr(r, "path"):
                found.add(r.path)
        return found

    return {p for p in paths(app.routes) | set(app.openapi()["paths"]) if p.startswith("/twilio/")}


WEBHOOK_PATHS = webhook_paths()


@all_targets
def test_the_public_ingress_routes_only_the_twilio_webhooks_over_tls(target: str) -> None:
    objects = RENDERED[target]
    ingresses = {i["metadata"]["name"]: i for i in by_kind(objects, "Ingress")}
    public = ingresses.pop("voiceticket-twilio-webhooks")
    assert len(WEBHOOK_PATHS) == 8  # the call's six, /twilio/menu (IVR) and /twilio/sms (two-way SMS)
    spec = public["spec"]
    (rule,) = spec["rules"]
    paths = rule["http"]["paths"]
    # Jira's signed status webhooks (/jira/webhooks/<tenant>): the one prefix, and nothing else
    jira = [p for p in paths if not p["path"].startswith("/twilio/")]
    assert [(p["path"], p["pathType"]) for p in jira] == [("/jira/webhooks/", "Prefix")]
    assert jira[0]["backend"]["service"] == {"name": "voiceticket-ingress", "port": {"name": "http"}}
    paths = [p for p in paths if p["path"].startswith("/twilio/")]
    assert {p["path"] for p in paths} == WEBHOOK_PATHS and len(paths) == len(WEBHOOK_PATHS)
    for p in paths:
        assert p["pathType"] == "Exact", p["path"]
        assert p["backend"]["service"] == {"name": "voiceticket-ingress", "port": {"name": "http"}}
    assert "defaultBackend" not in spec
    (tls,) = spec["tls"]
    assert tls["hosts"] == [rule["host"]] and tls["secretName"]
    assert public["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
    # Twilio signs the URL it calls: the host is the one the services build their URLs from.
    for d in by_kind(objects, "Deployment"):
        for e in d["spec"]["template"]["spec"]["containers"][0].get("env", []):
            if e["name"] == "VOICETICKET_PUBLIC_BASE_URL":
                url = urlsplit(e["value"])
                assert (url.scheme, url.netloc, url.path.rstrip("/")) == ("https", rule["host"], ""), d["metadata"]["name"]  # fmt: skip
    # config-api (and its admin API) only through the expose-config-api overlay, never public
    if target == "overlays/expose-config-api":
        internal = ingresses.pop("voiceticket-config-api")["spec"]
        assert internal["ingressClassName"] != spec["ingressClassName"]
        routed = {p["path"] for r in internal["rules"] for p in r["http"]["paths"]}
        assert routed and all(p.startswith(("/v1/", "/openapi.json", "/admin")) for p in routed)
        # the console's pages and every API it calls
        assert {"/admin", "/v1/calls", "/v1/dead-letters", "/v1/tenants", "/v1/admin"} <= routed
        assert not [p for p in routed if p.startswith(("/v1/runtime", "/metrics", "/healthz", "/readyz"))]
        assert internal["tls"]
    assert not ingresses, f"unexpected Ingress objects {sorted(ingresses)}"


# --- docker-compose.yml --------------------------------------------------------------------
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())


def compose_app_services() -> dict[str, dict]:
    images = {"voiceticket:dev", "voiceticket-sandbox:dev"}
    return {n: s for n, s in COMPOSE["services"].items() if s.get("image") in images}


def test_compose_has_the_stack() -> None:
    services = COMPOSE["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["postgres"]["image"].startswith("postgres:16")
    init = [v for v in services["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in v]
    assert init and (REPO / init[0].split(":")[0]).is_dir()
    jaeger_ports = " ".join(services["jaeger"]["ports"])
    assert ":4318:4318" in jaeger_ports and ":16686:16686" in jaeger_ports
    apps = compose_app_services()
    assert set(apps) == set(MODULES) | {"sandbox"}
    assert apps["sandbox"]["profiles"] == ["sandbox"]
    assert all("profiles" not in s for n, s in apps.items() if n != "sandbox")


def test_compose_services_run_existing_modules_from_one_build() -> None:
    for name, svc in compose_app_services().items():
        if name == "sandbox":  # the development-only target of the same Dockerfile
            assert svc["build"] == {"context": ".", "target": "sandbox"}
            assert re.search(r"^FROM \S+ AS sandbox$", (REPO / "Dockerfile").read_text(), re.M)
        else:
            assert (svc["build"], svc["image"]) == (".", "voiceticket:dev"), name
        module = svc["command"][0]
        assert any(REPO.glob(f"*/*/src/{module}/__main__.py")), f"{name}: no module {module}"
        if name != "sandbox":
            assert module == MODULES[name]


def test_compose_dependencies_and_healthchecks() -> None:
    services = COMPOSE["services"]
    for name, svc in services.items():
        for dep, cond in svc.get("depends_on", {}).items():
            assert dep in services, (name, dep)
            assert "profiles" not in services[dep], (name, dep)
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], (name, dep)
    for name in MODULES:
        assert "healthcheck" in services[name], name
        assert "/readyz" in " ".join(services[name]["healthcheck"]["test"]), name
    assert services["jira-writer"]["depends_on"]["postgres"]["condition"] == "service_healthy"


INTERPOLATION = re.compile(r"\$\{(VT_[A-Z0-9_]+)(:-|:\?)([^}]*)\}")
GENERATE_ENV = REPO / "deploy" / "local" / "generate-env.py"


def compose_env(service: str, values: dict[str, str]) -> dict[str, str]:
    """The service's environment as compose interpolates it with ``values`` (the .env)."""

    def resolve(m: re.Match[str]) -> str:
        var, op, arg = m.groups()
        if values.get(var):
            return values[var]
        assert op == ":-", f"{var} is required: {arg}"
        return arg

    env = COMPOSE["services"][service].get("environment") or {}
    return {k: INTERPOLATION.sub(resolve, str(v)) for k, v in env.items()}


def generated_env(tmp_path: Path) -> dict[str, str]:
    target = tmp_path / ".env"
    subprocess.run([sys.executable, str(GENERATE_ENV), str(target)], check=True, capture_output=True)
    assert target.stat().st_mode & 0o077 == 0, "the generated .env must be private"
    pairs = [line.split("=", 1) for line in target.read_text().splitlines() if line and line[0] != "#"]
    return {k: v.strip("'\"") for k, v in pairs}  # as compose reads a .env: quotes removed


def service_settings(
    cls: type[BaseSettings], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> BaseSettings:
    """``cls`` read from exactly ``env``, as the container reads its environment."""
    prefix = cls.model_config.get("env_prefix", "")
    for name in [n for n in os.environ if n.startswith(prefix)]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return cls(_env_file=None)  # type: ignore[call-arg]


def test_compose_secrets_have_no_default_and_must_be_set() -> None:
    """Every key, token, password and DSN comes from a required VT_* variable (``${VT_X:?...}``):
    compose refuses to start without it, and .env.example leaves it empty."""

    example = (REPO / ".env.example").read_text()
    required = set()
    for name, svc in COMPOSE["services"].items():
        for var, value in (svc.get("environment") or {}).items():
            if not (SECRET_NAME.search(var) or var.endswith("DATABASE_URL")):
                continue
            found = INTERPOLATION.findall(str(value))
            assert found, f"{name}.{var} must come from a VT_* variable"
            for env_var, op, message in found:
                assert op == ":?", (
                    f"{name}.{var}: {env_var} must be required (${{{env_var}:?...}}), not defaulted"
                )
                assert "generate-env.py" in message, f"{name}.{var}: the error must say how to set {env_var}"
                assert re.search(rf"^{env_var}=$", example, re.M), f"{env_var}: empty in .env.example"
                required.add(env_var)
    assert {"VT_CALLBACK_CONTEXT_KEY", "VT_CONFIG_API_MASTER_KEY", "VT_CONFIG_API_ADMIN_TOKEN"} <= required


def looks_like_a_fernet_key(text: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(text)) == 32
    except ValueError:
        return False


@pytest.mark.parametrize("path", ["docker-compose.yml", ".env.example"])
def test_compose_ships_no_literal_key_or_token(path: str) -> None:
    from voiceticket_common.settings import PUBLIC_CALLBACK_CONTEXT_KEYS
    from voiceticket_config_api.settings import PUBLIC_MASTER_KEYS

    text = (REPO / path).read_text()
    assert "dev-only" not in text
    for key in PUBLIC_CALLBACK_CONTEXT_KEYS | PUBLIC_MASTER_KEYS:
        assert key not in text
    words = re.findall(r"[A-Za-z0-9_=-]{40,}", text)
    assert not [w for w in words if looks_like_a_fernet_key(w)], f"{path} holds a Fernet key"


def test_generated_env_fills_every_required_secret_and_the_services_accept_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voiceticket_config_api.settings import Settings as ConfigApiSettings
    from voiceticket_ingress.settings import IngressSettings
    from voiceticket_notifier.settings import NotifierSettings

    values = generated_env(tmp_path)
    secrets_ = {k: v for k, v in values.items() if SECRET_NAME.search(k)}
    assert len(secrets_) >= 12 and all(secrets_.values()) and len(set(secrets_.values())) == len(secrets_)
    assert looks_like_a_fernet_key(values["VT_CALLBACK_CONTEXT_KEY"])
    # As the containers read them: compose's environment only, no .env of the checkout.
    for cls, service in [(IngressSettings, "ingress"), (NotifierSettings, "notifier")]:
        settings = service_settings(cls, compose_env(service, values), monkeypatch)
        assert settings.callback_context_key.get_secret_value() == values["VT_CALLBACK_CONTEXT_KEY"]  # type: ignore[attr-defined]
    capi = service_settings(ConfigApiSettings, compose_env("config-api", values), monkeypatch)
    assert capi.master_keys.get_secret_value() == f"k1:{values['VT_CONFIG_API_MASTER_KEY']}"  # type: ignore[attr-defined]

    again = tmp_path / "again"
    again.mkdir()
    (again / ".env").write_text(f"VT_CALLBACK_CONTEXT_KEY={values['VT_CALLBACK_CONTEXT_KEY']}\nMY_OWN=1\n")
    completed = generated_env(again)
    assert completed["VT_CALLBACK_CONTEXT_KEY"] == values["VT_CALLBACK_CONTEXT_KEY"], "set values are kept"
    assert completed["MY_OWN"] == "1" and completed["VT_CONFIG_API_ADMIN_TOKEN"]


def test_compose_services_refuse_the_former_public_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An old .env with the keys compose used to ship: the services listen on 0.0.0.0 in their
    containers, so they refuse them although VOICETICKET_ENVIRONMENT is development."""
    from pydantic import ValidationError

    from voiceticket_common.settings import PUBLIC_CALLBACK_CONTEXT_KEYS
    from voiceticket_ingress.settings import IngressSettings

    values = generated_env(tmp_path)
    env = compose_env("ingress", values)
    assert env["VOICETICKET_ENVIRONMENT"] == "development" and env["VOICETICKET_HOST"] == "0.0.0.0"
    for key in PUBLIC_CALLBACK_CONTEXT_KEYS:
        with pytest.raises(ValidationError, match="public development key.*VOICETICKET_HOST=0.0.0.0"):
            service_settings(IngressSettings, env | {"VOICETICKET_CALLBACK_CONTEXT_KEY": key}, monkeypatch)


@all_targets
def test_manifest_environments_are_known_names(target: str) -> None:
    from voiceticket_common.settings import Environment
    from voiceticket_config_api.settings import Settings as ConfigApiSettings

    (cm,) = by_kind(RENDERED[target], "ConfigMap")
    assert Environment(cm["data"]["VOICETICKET_ENVIRONMENT"])
    capi_envs = ConfigApiSettings.model_fields["env"].annotation.__args__  # type: ignore[union-attr]
    for d in by_kind(RENDERED[target], "Deployment"):
        for e in d["spec"]["template"]["spec"]["containers"][0].get("env", []):
            if e["name"] == "VOICETICKET_ENVIRONMENT":
                assert Environment(e["value"])
            if e["name"] == "CONFIG_API_ENV":
                assert e["value"] in capi_envs


def test_compose_env_names_match_the_services_settings() -> None:
    for name, module in MODULES.items():
        assert_env_names_known(module, set(COMPOSE["services"][name]["environment"]))


# --- Dockerfile ----------------------------------------------------------------------------
def test_dockerfile() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}$", text, re.M)
    assert 'ENTRYPOINT ["python", "-m"]' in text
    assert "uv sync --frozen --no-dev --package voiceticket --no-editable" in text
    assert "--all-packages" not in text, "the services' image leaves the sandbox out"
    assert re.search(r'pip install "uv==', text)
    assert not re.search(r"curl[^\n]*\|\s*(ba)?sh|ghcr\.io", text)
    (user,) = re.findall(r"^USER (\S+)$", text, re.M)
    assert int(user.split(":")[0]) >= 1000
    assert not re.search(r"^(ENV|ARG) \S*(TOKEN|KEY|PASSWORD|SECRET)", text, re.M)
    for member in sorted(REPO.glob("*/*/pyproject.toml")):
        rel = member.relative_to(REPO).as_posix()
        if rel.startswith(("libs/", "services/")):
            assert f"COPY {rel} " in text, f"Dockerfile does not copy {rel}"
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    rules = [line for line in ignore if line.strip() and not line.startswith("#")]
    assert rules[0] == "*" and "**/.env" in rules, "the build context is an allow-list"
