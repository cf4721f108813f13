"""A CycloneDX 1.5 SBOM of the services' image, from uv.lock alone.

The image installs ``voiceticket`` (no extras, no dev groups: the Dockerfile's
``uv sync --frozen --no-dev --package voiceticket``); this walks the same closure in the lock
file for the image's platform (CPython 3.11 on Linux) and lists every package with its version,
purl and the locked sdist or wheel hashes. No network, no installed environment needed: the
Dockerfile runs it in the builder stage and ships the result as /app/sbom.cdx.json, and
deploy/tests/test_image_contents.py checks it against what the replayed install really holds.

    python deploy/sbom.py [--lock uv.lock] [--output sbom.cdx.json] [--python 3.11.11] [--machine x86_64]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    from packaging.markers import Marker
except ImportError:  # the builder's bare interpreter: pip's vendored copy
    from pip._vendor.packaging.markers import Marker  # type: ignore[no-redef,import-not-found]

ROOT = "voiceticket"
REPO = Path(__file__).resolve().parents[1]


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def environment(python: str, machine: str) -> dict[str, str]:
    """PEP 508 marker values of the image's interpreter (python:3.11-slim on Linux)."""
    return {
        "implementation_name": "cpython",
        "implementation_version": python,
        "os_name": "posix",
        "platform_machine": machine,
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": python,
        "python_version": ".".join(python.split(".")[:2]),
        "sys_platform": "linux",
        "extra": "",
    }


class Lock:
    def __init__(self, data: dict[str, Any]) -> None:
        self.packages: dict[tuple[str, str], dict[str, Any]] = {
            (normalize(p["name"]), str(p["version"])): p for p in data["package"]
        }

    def find(self, dep: dict[str, Any]) -> dict[str, Any]:
        name = normalize(dep["name"])
        matches = [p for (n, v), p in self.packages.items() if n == name and dep.get("version", v) == v]
        if len(matches) != 1:
            raise SystemExit(f"uv.lock: no single package for {dep}")
        return matches[0]

    def closure(self, root: str, env: dict[str, str]) -> list[dict[str, Any]]:
        """``root`` and what it needs on ``env``: dependencies whose marker holds, with the
        optional dependencies of the extras a dependency asks for; never dev groups."""
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        todo: list[tuple[dict[str, Any], tuple[str, ...]]] = [(self.find({"name": root}), ())]
        while todo:
            package, extras = todo.pop()
            key = (normalize(package["name"]), str(package["version"]))
            first = key not in seen
            seen[key] = package
            deps = list(package.get("dependencies", [])) if first else []
            for extra in extras:
                deps += package.get("optional-dependencies", {}).get(extra, [])
            for dep in deps:
                if "marker" in dep and not Marker(dep["marker"]).evaluate(env):
                    continue
                todo.append((self.find(dep), tuple(dep.get("extra", []))))
        return sorted(seen.values(), key=lambda p: (normalize(p["name"]), str(p["version"])))


def hashes(package: dict[str, Any]) -> list[dict[str, str]]:
    files = ([package["sdist"]] if "sdist" in package else []) + list(package.get("wheels", []))
    found = []
    for f in files:
        alg, _, value = f.get("hash", "").partition(":")
        if alg == "sha256":
            found.append({"alg": "SHA-256", "content": value})
    return found


def ref(package: dict[str, Any]) -> str:
    return f"{normalize(package['name'])}@{package['version']}"


def component(package: dict[str, Any]) -> dict[str, Any]:
    source = package.get("source", {})
    local = "editable" in source or "virtual" in source or "directory" in source
    entry: dict[str, Any] = {
        "type": "application" if package["name"] == ROOT else "library",
        "bom-ref": ref(package),
        "name": normalize(package["name"]),
        "version": str(package["version"]),
    }
    if local:  # a workspace member: built from this repository, not downloaded
        entry["properties"] = [{"name": "voiceticket:workspace-path", "value": next(iter(source.values()))}]
    else:
        entry["purl"] = f"pkg:pypi/{normalize(package['name'])}@{package['version']}"
        if registry := source.get("registry"):
            entry["externalReferences"] = [{"type": "distribution", "url": registry}]
        if found := hashes(package):
            # the locked artefacts (sdist, wheels): the installed one is among them
            entry["properties"] = [
                {"name": "voiceticket:locked-sha256", "value": h["content"]} for h in found
            ]
    return entry


def sbom(lock_text: str, python: str = "3.11.11", machine: str = "x86_64") -> dict[str, Any]:
    lock = Lock(tomllib.loads(lock_text))
    env = environment(python, machine)
    packages = lock.closure(ROOT, env)
    refs = {ref(p) for p in packages}

    def depends(package: dict[str, Any]) -> Iterator[str]:
        for dep in package.get("dependencies", []):
            if "marker" in dep and not Marker(dep["marker"]).evaluate(env):
                continue
            target = ref(lock.find(dep))
            if target in refs:
                yield target

    root = next(p for p in packages if p["name"] == ROOT)
    digest = hashlib.sha256(lock_text.encode()).hexdigest()
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        # Reproducible: the same lock file gives the same document (no timestamp, derived serial).
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'voiceticket-image:' + digest)}",
        "version": 1,
        "metadata": {
            "tools": {"components": [{"type": "application", "name": "deploy/sbom.py"}]},
            "component": {**component(root), "type": "container", "bom-ref": "voiceticket-image"},
            "properties": [
                {"name": "voiceticket:uv-lock-sha256", "value": digest},
                {"name": "voiceticket:python", "value": python},
                {"name": "voiceticket:platform", "value": f"linux/{machine}"},
            ],
        },
        "components": [component(p) for p in packages],
        "dependencies": [
            {"ref": "voiceticket-image", "dependsOn": [ref(root)]},
            *({"ref": ref(p), "dependsOn": sorted(set(depends(p)))} for p in packages),
        ],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", type=Path, default=REPO / "uv.lock")
    parser.add_argument("--output", type=Path, help="default: stdout")
    parser.add_argument("--python", default=".".join(map(str, sys.version_info[:3])))
    parser.add_argument("--machine", default="x86_64")
    args = parser.parse_args(argv)
    text = json.dumps(sbom(args.lock.read_text(), args.python, args.machine), indent=2) + "\n"
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
