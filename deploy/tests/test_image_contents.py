"""What the services' image installs: the Dockerfile's own ``uv sync`` steps, run here.

The install commands are parsed out of the Dockerfile (the stage the default target copies its
virtualenv from), so this test cannot drift from it. They run against this checkout into a
temporary ``UV_PROJECT_ENVIRONMENT``, offline from the local uv cache when it has everything.
The image must hold libs/common, the six services and the ``voiceticket`` CLI, and must not hold
the provider sandboxes (``voiceticket-sandbox`` and its ~7 MB of vendored OpenAPI specs).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

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


def test_the_image_install_leaves_the_sandbox_out(tmp_path: Path) -> None:
    """About 3 s with a warm uv cache (after `uv sync`), so it runs with the unit tests."""

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
    probe = (
        "import importlib.metadata as md, importlib.util as u, json, sys;"
        "mods = sys.argv[1:];"
        "specs = {m: u.find_spec(m) for m in mods};"
        "dists = {d.metadata['Name'] for d in md.distributions()};"
        "print(json.dumps({'found': {m: s.origin if s else None for m, s in specs.items()},"
        " 'dists': sorted(dists)}))"
    )
    result = subprocess.run(
        [str(python), "-I", "-c", probe, *IN_IMAGE, *NOT_IN_IMAGE],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    found: dict[str, str | None] = report["found"]
    for module in IN_IMAGE:
        origin = found[module]
        assert origin is not None, f"{module} is not installed in the image"
        assert Path(origin).is_relative_to(venv), f"{module} is not installed as a wheel: {origin}"
    assert found["voiceticket_sandbox"] is None, "the image installs the sandbox"
    assert found["openapi_core"] is None, "the image installs the sandbox's dependencies"
    assert "voiceticket-sandbox" not in report["dists"]

    # The CLI still works there, and the demo says what is missing.
    result = subprocess.run(
        [str(python), "-I", "-m", "voiceticket", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert "install voiceticket[sandbox] for the demo" in result.stderr
