"""What the services' image installs: the Dockerfile's own ``uv sync`` steps, run here.

No image builder runs on this machine (no daemon, no registry), so the build is checked by
replaying it: the install commands are parsed out of the Dockerfile (the stage the default
target copies its virtualenv from), so this test cannot drift from it. They run against this
checkout into a temporary ``UV_PROJECT_ENVIRONMENT``, offline from the local uv cache when it has
everything. The image must hold libs/common, the six services and the ``voiceticket`` CLI, and
must not hold the provider sandboxes (``voiceticket-sandbox`` and its ~7 MB of vendored OpenAPI
specs); every COPY source must exist and pass .dockerignore; the base is pinned by digest, the
user is not root, the command resolves to an installed module, and the SBOM (deploy/sbom.py)
lists exactly what was installed.
"""

from __future__ import annotations

import fnmatch
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
IN_IMAGE = [
    "voiceticket",
    "voiceticket.cli",
    "voiceticket_common",
    "voiceticket_ingress",
    "voiceticket_transcriber",
    "voiceticket_analyzer",
    "voiceticket_jira_writer",
    "voiceticket_notifier",
    "voiceticket_config_api",
]
NOT_IN_IMAGE = ["voiceticket_sandbox", "openapi_core"]  # the sandbox and a dependency only it has
UV = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
# uv settings from the environment that say where the cache and the registry are; every other
# UV_* variable (UV_PROJECT_ENVIRONMENT, UV_NO_EDITABLE, UV_EXTRA, ...) could change the result.
KEEP_UV = ("UV_CACHE_DIR", "UV_INDEX", "UV_DEFAULT_INDEX", "UV_EXTRA_INDEX_URL", "UV_NATIVE_TLS", "UV_HTTP")


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) of every instruction, continuation lines joined, comments dropped."""

    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    pairs: list[tuple[str, str]] = []
    for item in logical:
        keyword, _, rest = item.partition(" ")
        pairs.append((keyword.upper(), rest.strip()))
    return pairs


def image_install_commands(text: str) -> list[list[str]]:
    """The ``uv sync`` argument lists of the stage the default (last) target copies /app/.venv from."""

    stages: list[tuple[str, list[tuple[str, str]]]] = []
    for keyword, rest in instructions(text):
        if keyword == "FROM":
            match = re.search(r"\bAS\s+(\S+)$", rest, re.I)
            stages.append((match.group(1) if match else rest, []))
        elif stages:
            stages[-1][1].append((keyword, rest))
    assert stages, "no FROM"
    copies = [r for k, r in stages[-1][1] if k == "COPY" and "/app/.venv" in r]
    assert len(copies) == 1, "the default target should copy exactly one virtualenv"
    (source,) = re.findall(r"--from=(\S+)", copies[0])
    by_name = dict(stages)
    assert source in by_name, f"no stage {source}"
    commands: list[list[str]] = []
    for keyword, rest in by_name[source]:
        if keyword == "RUN" and "uv sync" in rest:
            words = shlex.split(rest)
            start = next(i for i in range(len(words) - 1) if words[i : i + 2] == ["uv", "sync"])
            commands.append(words[start + 2 :])
    assert commands, f"stage {source} runs no `uv sync`"
    return commands


def workspace_members() -> list[str]:
    return sorted(
        tomllib.loads(p.read_text())["project"]["name"]
        for p in [*REPO.glob("libs/*/pyproject.toml"), *REPO.glob("services/*/pyproject.toml")]
    )


def sync(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # uv keys its cached wheels of local packages on their pyproject.toml only, so a wheel built
    # before the last source edit would be reused; the image must be judged on today's sources.
    fresh = [arg for name in workspace_members() for arg in ("--reinstall-package", name)]

    def run(extra: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [UV, "sync", *args, *fresh, *extra],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )

    result = run(["--offline"])
    if result.returncode != 0:  # something is not in the local uv cache yet: ask the registry
        result = run([])
    return result


def test_the_parser_finds_the_install_steps() -> None:
    commands = image_install_commands(DOCKERFILE.read_text())
    assert all(c[:1] == ["--frozen"] and "--no-dev" in c for c in commands), commands
    assert "--no-editable" in commands[-1]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The Dockerfile's install replayed once (about 3 s with a warm uv cache, after `uv sync`):
    the virtualenv, the environment to run it with, and what it holds."""

    tmp_path = tmp_path_factory.mktemp("image")
    venv = tmp_path / "venv"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("UV_", "VIRTUAL_ENV", "PYTHON", "CONDA")) or k.startswith(KEEP_UV)
    }
    # As the Dockerfile's builder stage sets them, but with this machine's interpreter and cache.
    env |= {
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON": sys.executable,
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_LINK_MODE": "hardlink",
        "UV_NO_PROGRESS": "1",
    }
    for args in image_install_commands(DOCKERFILE.read_text()):
        result = sync(args, env)
        assert result.returncode == 0, f"uv sync {shlex.join(args)}:\n{result.stderr[-3000:]}"

    python = venv / "bin" / "python"
    modules = sorted({*IN_IMAGE, *NOT_IN_IMAGE, *commanded_modules()})
    probe = (
        "import importlib.metadata as md, importlib.util as u, json, sys;"
        "mods = sys.argv[1:];"
        "specs = {m: u.find_spec(m) for m in mods};"
        "mains = {m: bool(s and s.submodule_search_locations and u.find_spec(m + '.__main__')) for m, s in specs.items()};"
        "dists = {d.metadata['Name']: d.version for d in md.distributions()};"
        "print(json.dumps({'found': {m: s.origin if s else None for m, s in specs.items()},"
        " 'mains': mains, 'dists': dists}))"
    )
    result = subprocess.run(
        [str(python), "-I", "-c", probe, *modules], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0, result.stderr
    return {"venv": venv, "python": python, "env": env, "tmp": tmp_path, **json.loads(result.stdout)}


def test_the_image_install_leaves_the_sandbox_out(image: dict) -> None:
    venv, found = image["venv"], image["found"]
    for module in IN_IMAGE:
        origin = found[module]
        assert origin is not None, f"{module} is not installed in the image"
        assert Path(origin).is_relative_to(venv), f"{module} is not installed as a wheel: {origin}"
    assert found["voiceticket_sandbox"] is None, "the image installs the sandbox"
    assert found["openapi_core"] is None, "the image installs the sandbox's dependencies"
    assert "voiceticket-sandbox" not in image["dists"]

    # The CLI still works there, and the demo says what is missing.
    result = subprocess.run(
        [str(image["python"]), "-I", "-m", "voiceticket", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        env=image["env"],
        cwd=image["tmp"],
    )
    assert result.returncode == 2, result.stderr
    assert "install voiceticket[sandbox] for the demo" in result.stderr


# --- the Dockerfile, statically --------------------------------------------------------------
def stages(text: str) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for keyword, rest in instructions(text):
        if keyword == "FROM":
            match = re.search(r"\bAS\s+(\S+)$", rest, re.I)
            current = found.setdefault(match.group(1) if match else rest, [])
        current.append((keyword, rest))
    return found


def runtime_stage(text: str) -> list[tuple[str, str]]:
    """The default target's instructions, its ancestors' first (FROM <stage> chains)."""
    by_name = stages(text)
    chain: list[list[tuple[str, str]]] = []
    name = list(by_name)[-1]
    while name in by_name:
        chain.insert(0, by_name[name])
        name = by_name[name][0][1].split()[0]
    return [i for stage in chain for i in stage]


def commanded_modules() -> set[str]:
    """Every module the image is run with: its CMD, the Kubernetes workloads' first argument,
    docker compose's services' command (not the sandbox's: its own target)."""
    cmd = [json.loads(r) for k, r in runtime_stage(DOCKERFILE.read_text()) if k == "CMD"][-1]
    modules = {cmd[0]}
    for manifest in (REPO / "deploy" / "k8s" / "base").glob("*.yaml"):
        for doc in yaml.safe_load_all(manifest.read_text()):
            spec = (doc or {}).get("spec", {})
            spec = spec.get("jobTemplate", {}).get("spec", spec)
            for c in spec.get("template", {}).get("spec", {}).get("containers", []):
                modules.add(c["args"][0])
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    for svc in compose["services"].values():
        if svc.get("image") == "voiceticket:dev":
            modules.add(svc["command"][0])
    return modules


def dockerignore_allows(path: str) -> bool:
    """Docker's rule: the last matching pattern wins (``!`` re-includes); a directory pattern
    covers what is below it."""
    allowed = True
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate, pattern = line.startswith("!"), line.lstrip("!").rstrip("/")
        regex = fnmatch.translate(pattern).replace(".*", "[^/]*").replace("[^/]*[^/]*/", "(.*/)?")
        parts = path.split("/")
        if any(re.fullmatch(regex, "/".join(parts[: i + 1])) for i in range(len(parts))):
            allowed = negate
    return allowed


def test_every_copy_source_exists_and_is_in_the_build_context() -> None:
    copies = [r for k, r in instructions(DOCKERFILE.read_text()) if k == "COPY" and "--from=" not in r]
    assert len(copies) >= 10
    for rest in copies:
        *sources, _dest = shlex.split(rest)
        for source in sources:
            path = REPO / source
            assert path.exists(), f"COPY {source}: no such file"
            if path.is_file():
                needed = [path]
            else:  # a directory copies what the context holds of it: at least every package source
                needed = [p for p in path.glob("*/src/**/*.py") if "__pycache__" not in p.parts]
                needed += list(path.glob("*/pyproject.toml"))
            assert needed, source
            for f in needed:
                rel = f.relative_to(REPO).as_posix()
                assert dockerignore_allows(rel), f"COPY {source}: {rel} is excluded by .dockerignore"
    assert not dockerignore_allows(".env") and not dockerignore_allows("deploy/local/kafka/lib/x.jar")
    assert not dockerignore_allows("libs/common/tests/test_x.py") and dockerignore_allows("uv.lock")


def test_the_base_is_pinned_by_digest_and_the_user_is_not_root() -> None:
    text = DOCKERFILE.read_text()
    (base,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", base), base
    froms = [r.split()[0] for k, r in instructions(text) if k == "FROM"]
    assert all(f == "${PYTHON_IMAGE}" or f in stages(text) for f in froms), froms
    runtime = runtime_stage(text)
    (user,) = [r for k, r in runtime if k == "USER"]
    uid, _, gid = user.partition(":")
    assert int(uid) >= 1000 and int(gid or uid) >= 1000, "numeric, so runAsNonRoot can verify it"
    assert [json.loads(r) for k, r in runtime if k == "ENTRYPOINT"] == [["python", "-m"]]


def test_the_commands_resolve_to_installed_modules(image: dict) -> None:
    modules = commanded_modules()
    assert {"voiceticket_ingress", "voiceticket_config_api", "voiceticket"} <= modules
    for module in modules:
        assert image["mains"][module], f"`python -m {module}`: no such module in the image"
    scripts = tomllib.loads((REPO / "libs/voiceticket/pyproject.toml").read_text())["project"]["scripts"]
    for script in scripts:
        assert (image["venv"] / "bin" / script).is_file(), f"console script {script} missing"


def test_the_sbom_lists_exactly_what_the_image_installs(image: dict) -> None:
    sys.path.insert(0, str(REPO / "deploy"))
    try:
        import sbom
    finally:
        sys.path.pop(0)
    python = ".".join(map(str, sys.version_info[:3]))
    doc = sbom.sbom((REPO / "uv.lock").read_text(), python, platform.machine())
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.5"
    listed = {c["name"]: c["version"] for c in doc["components"]}
    installed = {sbom.normalize(n): v for n, v in image["dists"].items()}
    assert listed == installed
    assert "voiceticket-sandbox" not in listed
    refs = {c["bom-ref"] for c in doc["components"]}
    assert {d["ref"] for d in doc["dependencies"]} == refs | {"voiceticket-image"}
    assert all(set(d["dependsOn"]) <= refs for d in doc["dependencies"])
    for c in doc["components"]:
        assert ("purl" in c) != (c["name"].startswith("voiceticket")), c["name"]
    # Reproducible, and the script runs as the Dockerfile runs it.
    out = image["tmp"] / "sbom.cdx.json"
    run = [sys.executable, str(REPO / "deploy/sbom.py"), "--lock", str(REPO / "uv.lock"), "--output", str(out),
           "--python", python, "--machine", platform.machine()]  # fmt: skip
    subprocess.run(run, check=True, timeout=60)
    assert json.loads(out.read_text()) == doc
    assert "deploy/sbom.py --lock uv.lock --output /app/sbom.cdx.json" in DOCKERFILE.read_text()
