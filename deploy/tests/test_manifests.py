"""Offline checks of the deployment artefacts: Kubernetes manifests, docker-compose.yml, Dockerfile.

The kustomize overlays are rendered by a tiny renderer below (resources, target-less strategic
merge patches, ``images:``, ``namespace:``), so no binary is needed; where ``kustomize`` or
``kubectl`` exists, a test checks that the renderer agrees with it. Every rendered object is
validated against the Kubernetes OpenAPI schemas shipped by ``kubernetes-validate``.
"""

from __future__ import annotations

import base64
import copy
import importlib
import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from pydantic_settings import BaseSettings

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
TARGETS = ["base", "overlays/production", "overlays/dev"]
K8S_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
MODULES = {
    "ingress": "voiceticket_ingress",
    "transcriber": "voiceticket_transcriber",
    "analyzer": "voiceticket_analyzer",
    "jira-writer": "voiceticket_jira_writer",
    "notifier": "voiceticket_notifier",
    "config-api": "voiceticket_config_api",
}
SECRET_NAME = re.compile(r"TOKEN|KEY|PASSWORD|SECRET")


# --- the renderer --------------------------------------------------------------------------
MERGE_KEYS = {  # strategic merge keys of the lists our patches touch
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}
PATCHABLE_KINDS = {"Deployment", "ConfigMap", "HorizontalPodAutoscaler"}


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
    return [obj["spec"]["template"]["spec"]] if obj["kind"] == "Deployment" else []


def render(directory: Path) -> list[dict]:
    k = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(k) - {"apiVersion", "kind", "resources", "patches", "images", "namespace"}
    assert not unsupported, f"{directory}: the test renderer does not support {unsupported}"
    objects: list[dict] = []
    for entry in k.get("resources", []):
        path = directory / entry
        objects += render(path) if path.is_dir() else load_docs(path)
    for patch_ref in k.get("patches", []):
        assert set(patch_ref) == {"path"}, "only target-less strategic merge patch files are supported"
        for patch in load_docs(directory / patch_ref["path"]):
            assert patch["kind"] in PATCHABLE_KINDS, f"patch on {patch['kind']}"
            matches = [
                o
                for o in objects
                if (o["apiVersion"], o["kind"], o["metadata"]["name"])
                == (patch["apiVersion"], patch["kind"], patch["metadata"]["name"])
            ]
            assert len(matches) == 1, f"{patch_ref['path']}: no single target for {patch['metadata']['name']}"
            strategic_merge(matches[0], {f: v for f, v in patch.items() if f != "metadata"})
    for rule in k.get("images", []):
        for obj in objects:
            for pod in pod_specs(obj):
                for c in pod.get("initContainers", []) + pod["containers"]:
                    c["image"] = set_image(c["image"], rule)
    if "namespace" in k:
        for obj in objects:
            obj["metadata"]["namespace"] = k["namespace"]
    return objects


RENDERED = {target: render(K8S / target) for target in TARGETS}


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def all_targets(fn):  # noqa: ANN001, ANN201 - decorator
    return pytest.mark.parametrize("target", TARGETS)(fn)


# --- Kubernetes ----------------------------------------------------------------------------
@pytest.mark.parametrize("version", K8S_VERSIONS)
@all_targets
def test_manifests_validate_against_kubernetes_schemas(target: str, version: str) -> None:
    for obj in RENDERED[target]:
        kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("target", TARGETS[1:])
def test_renderer_agrees_with_kustomize(target: str) -> None:
    if shutil.which("kustomize"):
        cmd = ["kustomize", "build", str(K8S / target)]
    elif shutil.which("kubectl"):
        cmd = ["kubectl", "kustomize", str(K8S / target)]
    else:
        pytest.skip("neither kustomize nor kubectl is installed")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60).stdout
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    theirs = sorted((d for d in yaml.safe_load_all(out) if d), key=key)
    assert sorted(RENDERED[target], key=key) == theirs


@all_targets
def test_every_service_is_deployed_from_one_image(target: str) -> None:
    deployments = by_kind(RENDERED[target], "Deployment")
    modules = {d["spec"]["template"]["spec"]["containers"][0]["args"][0] for d in deployments}
    assert modules == set(MODULES.values())
    images = {c["image"] for d in deployments for c in d["spec"]["template"]["spec"]["containers"]}
    assert len(images) == 1, images
    if target != "base":
        (image,) = images
        assert image != "voiceticket" and not image.endswith(":latest"), image


def test_production_pins_a_registry_image() -> None:
    d = by_kind(RENDERED["overlays/production"], "Deployment")[0]
    image = d["spec"]["template"]["spec"]["containers"][0]["image"]
    assert "/" in image and ":" in image.rsplit("/", 1)[-1], image


@all_targets
def test_deployments_are_hardened_and_probed(target: str) -> None:
    for d in by_kind(RENDERED[target], "Deployment"):
        name, pod = d["metadata"]["name"], d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        for c in pod["containers"]:
            ports = {p["name"] for p in c["ports"]}
            for probe in ("readinessProbe", "livenessProbe"):
                assert c[probe]["httpGet"]["port"] in ports, (name, probe)
            assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", name
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", name
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][bound]), (name, bound)
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name


@all_targets
def test_secrets_are_references_only(target: str) -> None:
    objects = RENDERED[target]
    assert not by_kind(objects, "Secret"), "secret values must not be committed"
    for cm in by_kind(objects, "ConfigMap"):
        assert not [k for k in cm["data"] if SECRET_NAME.search(k)], cm["metadata"]["name"]
    for d in by_kind(objects, "Deployment"):
        for c in d["spec"]["template"]["spec"]["containers"]:
            for env in c.get("env", []):
                if SECRET_NAME.search(env["name"]) or env["name"].endswith("DATABASE_URL"):
                    assert "value" not in env, (d["metadata"]["name"], env["name"])
                    assert "secretKeyRef" in env["valueFrom"], (d["metadata"]["name"], env["name"])


def test_every_referenced_secret_is_documented() -> None:
    """Operators create the secrets from docs/deployment.md: each name and key must be there."""

    doc = (REPO / "docs" / "deployment.md").read_text()
    refs = {
        (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for d in by_kind(RENDERED["base"], "Deployment")
        for c in d["spec"]["template"]["spec"]["containers"]
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
    shared = set(by_kind(RENDERED[target], "ConfigMap")[0]["data"])
    for d in by_kind(RENDERED[target], "Deployment"):
        c = d["spec"]["template"]["spec"]["containers"][0]
        names = {e["name"] for e in c.get("env", [])}
        if c.get("envFrom"):
            names |= shared
        assert_env_names_known(c["args"][0], names)


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
    (pdb,) = by_kind(objects, "PodDisruptionBudget")
    assert selects(pdb["spec"]["selector"]) == {"voiceticket-ingress"}
    partitions = int(by_kind(objects, "ConfigMap")[0]["data"]["VOICETICKET_KAFKA_PARTITIONS"])
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in by_kind(objects, "HorizontalPodAutoscaler")}
    assert set(hpas) == {"voiceticket-ingress", "voiceticket-transcriber"}
    for name, hpa in hpas.items():
        assert "replicas" not in deployments[name]["spec"], f"{name}: replicas belong to the HPA"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert hpas["voiceticket-transcriber"]["spec"]["maxReplicas"] <= partitions


@all_targets
def test_network_policies(target: str) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in by_kind(RENDERED[target], "NetworkPolicy")}
    deny = policies["voiceticket-default-deny-ingress"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"] and "ingress" not in deny
    controller = policies["voiceticket-ingress-from-controller"]
    assert controller["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "voiceticket-ingress"}
    assert "namespaceSelector" in controller["ingress"][0]["from"][0]
    capi = policies["voiceticket-config-api-from-services"]
    (source,) = capi["ingress"][0]["from"]
    (expr,) = source["podSelector"]["matchExpressions"]
    callers = {f"voiceticket-{s}" for s in MODULES if s != "config-api"} | {"voiceticket-jira-writer-purge"}
    assert expr["operator"] == "In" and set(expr["values"]) == callers
    assert "namespaceSelector" not in source


@all_targets
def test_every_stateful_service_has_a_hardened_purge_cronjob(target: str) -> None:
    objects = RENDERED[target]
    cronjobs = {c["metadata"]["name"]: c for c in by_kind(objects, "CronJob")}
    stateful = {"transcriber", "analyzer", "jira-writer", "notifier", "config-api"}
    assert set(cronjobs) == {f"voiceticket-{s}-purge" for s in stateful}
    deployments = {d["metadata"]["name"]: d for d in by_kind(objects, "Deployment")}
    shared = set(by_kind(objects, "ConfigMap")[0]["data"])
    for service in stateful:
        cj = cronjobs[f"voiceticket-{service}-purge"]
        assert cj["spec"]["concurrencyPolicy"] == "Forbid"
        (pod,) = pod_specs(cj)
        (c,) = pod["containers"]
        assert c["args"] == [MODULES[service], "purge"]
        deployed = deployments[f"voiceticket-{service}"]["spec"]["template"]["spec"]["containers"][0]
        assert c["image"] == deployed["image"], "the services' own image"
        # Pod Security "restricted"
        assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert {"cpu", "memory"} <= set(c["resources"]["limits"])
        for env in c.get("env", []):
            if SECRET_NAME.search(env["name"]) or env["name"].endswith("DATABASE_URL"):
                assert "secretKeyRef" in env["valueFrom"], (service, env["name"])
        names = {e["name"] for e in c.get("env", [])} | (shared if c.get("envFrom") else set())
        assert_env_names_known(MODULES[service], names)
        # Each purges the database its service owns.
        db = next(e for e in c["env"] if e["name"].endswith("DATABASE_URL"))
        deployed_db = next(e for e in deployed["env"] if e["name"].endswith("DATABASE_URL"))
        assert db == deployed_db
        labels = pod_specs(cj) and cj["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
        for d in deployments.values():  # no Deployment's selector takes the purge's pods
            assert not d["spec"]["selector"]["matchLabels"].items() <= labels.items()


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
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", text, re.M)
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
