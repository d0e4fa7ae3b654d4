"""Deployment size: the core layer and each function as ``make build`` (``sam build``) leaves them.

For each artifact under ``.aws-sam/build``: its unzipped bytes, and its size zipped with deflate (as
``sam deploy`` uploads it), made in a temporary file and thrown away. The layer's ten biggest
top-level packages say where its bytes go. Lambda's own limits are beside them: 250 MB unzipped for a
function and all its layers together, 50 MB zipped for a direct upload.

``make build`` takes about 20 s with a warm pip cache (longer on a fresh machine: it downloads the
layer's wheels), so ``run()`` reuses ``.aws-sam/build`` when it is newer than every source it is built
from and builds only otherwise; ``run(quick=True)`` never builds and reports nothing when there is no build.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / ".aws-sam" / "build"
LAYER = "CoreLayer"
SOURCES = ("template.yaml", "layers/core", "functions")
UNZIPPED_LIMIT = 250 * 10**6  # function and layers together, unzipped (Lambda quotas say 250 MB)
ZIPPED_LIMIT = 50 * 10**6  # direct upload of a .zip
MB = 10**6
# What the Python runtime of Lambda already has: a copy in the layer shadows it (/opt/python comes first).
IN_THE_RUNTIME = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3")


def newest_source() -> float:
    newest = 0.0
    for name in SOURCES:
        path = ROOT / name
        files = (
            [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        )
        newest = max([newest, *(p.stat().st_mtime for p in files)])
    return newest


def build_time() -> float | None:
    """When the build last finished (its template), or None without one."""
    template = BUILD / "template.yaml"
    return template.stat().st_mtime if template.exists() else None


def make_build() -> float:
    started = time.perf_counter()
    done = subprocess.run(
        ["make", "build"],  # noqa: S607 - the project's own Makefile
        cwd=ROOT,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"make build failed\n{(done.stdout + done.stderr)[-3000:]}")
    return time.perf_counter() - started


def shipped(folder: Path) -> list[Path]:
    """Every file ``make build`` put there, the bytecode it compiles after ``sam build`` included: it is
    uploaded and saves every cold start from compiling (see ``pycache_bytes`` for its share)."""
    return sorted(p for p in folder.rglob("*") if p.is_file())


def unzipped_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in shipped(folder))


def zipped_bytes(folder: Path) -> int:
    with tempfile.TemporaryFile() as scratch:
        with zipfile.ZipFile(scratch, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in shipped(folder):
                archive.write(path, path.relative_to(folder))
        return scratch.tell()


def pycache_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("__pycache__/*") if p.is_file())


def biggest_packages(site: Path, count: int = 10) -> list[dict[str, Any]]:
    """The top-level entries of the layer's ``python/`` folder, their metadata folders counted with them."""
    sizes: dict[str, int] = {}
    for entry in site.iterdir():
        name = entry.name
        if name.endswith((".dist-info", ".data")):
            name = name.split("-")[0].lower()
        size = entry.stat().st_size if entry.is_file() else unzipped_bytes(entry)
        sizes[name] = sizes.get(name, 0) + size
    ranked = sorted(sizes.items(), key=lambda item: -item[1])[:count]
    return [{"package": name, "bytes": size, "in_runtime": name in IN_THE_RUNTIME} for name, size in ranked]


def waste(folder: Path) -> dict[str, int]:
    """Bytes the runtime never needs: tests, type stubs."""
    found = {"tests": 0, "stubs (.pyi, -stubs)": 0}
    for path in shipped(folder):
        size = path.stat().st_size
        parts = path.relative_to(folder).parts
        if any(part in ("tests", "test") for part in parts[:-1]):
            found["tests"] += size
        elif path.suffix == ".pyi" or any(part.endswith("-stubs") for part in parts):
            found["stubs (.pyi, -stubs)"] += size
    return found


def run(quick: bool = False) -> dict[str, Any]:
    started = time.perf_counter()
    built_at = build_time()
    fresh = built_at is not None and built_at > newest_source()
    build_seconds = None
    if not fresh and not quick:
        build_seconds = make_build()
        built_at = build_time()
    if built_at is None:
        return {"quick": quick, "built": False, "run_seconds": time.perf_counter() - started}
    artifacts = {}
    for folder in sorted(p for p in BUILD.iterdir() if p.is_dir()):
        artifacts[folder.name] = {"unzipped": unzipped_bytes(folder), "zipped": zipped_bytes(folder)}
    layer = artifacts[LAYER]
    largest_function = max(v["unzipped"] for k, v in artifacts.items() if k != LAYER)
    site = BUILD / LAYER / "python"
    packages = biggest_packages(site)
    return {
        "quick": quick,
        "built": True,
        "build_seconds": build_seconds,  # None: reused
        "stale": not fresh and build_seconds is None,  # quick, with sources newer than the build
        "artifacts": artifacts,
        "largest_function_with_layer": largest_function + layer["unzipped"],
        "layer_packages": packages,
        "layer_waste": waste(site),
        "pycache_bytes": pycache_bytes(BUILD),  # the compiled bytecode make build adds (counted above)
        "in_runtime_bytes": sum(p["bytes"] for p in biggest_packages(site, 1000) if p["in_runtime"]),
        "limits": {"unzipped": UNZIPPED_LIMIT, "zipped": ZIPPED_LIMIT},
        "run_seconds": time.perf_counter() - started,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = ["## Deployment size", ""]
    if not result["built"]:
        return "\n".join([*lines, "No `.aws-sam/build` to measure (quick runs never build): run `make build`.", ""])
    how = (
        f"built now by `make build` ({result['build_seconds']:.0f} s)"
        if result["build_seconds"] is not None
        else "the existing `.aws-sam/build`" + (" (older than the sources: stale)" if result["stale"] else "")
    )
    limits = result["limits"]
    lines += [
        f"Each artifact of {how}: bytes on disk, and zipped with deflate as `sam deploy` uploads it. Lambda's "
        f"limits: {limits['unzipped'] / MB:.0f} MB unzipped for a function with its layers, "
        f"{limits['zipped'] / MB:.0f} MB zipped for a direct upload.",
        "",
        "| artifact | unzipped MB | zipped MB |",
        "| --- | ---: | ---: |",
    ]
    for name, sizes in result["artifacts"].items():
        lines.append(f"| {name} | {sizes['unzipped'] / MB:.3f} | {sizes['zipped'] / MB:.3f} |")
    biggest = result["largest_function_with_layer"]
    lines += [
        f"| largest function + layer, against 250 MB | {biggest / MB:.1f} ({biggest / limits['unzipped']:.0%}) | |",
        "",
        "The layer's biggest packages (metadata folders included):",
        "",
        "| package | MB | the Lambda runtime has it |",
        "| --- | ---: | --- |",
    ]
    for package in result["layer_packages"]:
        lines.append(
            f"| {package['package']} | {package['bytes'] / MB:.2f} | {'yes' if package['in_runtime'] else ''} |"
        )
    waste = ", ".join(f"{name} {size / MB:.2f} MB" for name, size in result["layer_waste"].items())
    lines += [
        "",
        f"In the layer though the runtime has its own copies: {result['in_runtime_bytes'] / MB:.1f} MB. On purpose "
        "for boto3 and botocore: the tracer's aws-xray-sdk pulls botocore in anyway, ahead of the runtime's on the "
        "path, so the layer pins the pair the tests run (layers/core/requirements.txt). Not needed at run time: "
        f"{waste}.",
        "",
        f"Of the above, {result['pycache_bytes'] / MB:.1f} MB is the bytecode `make build` compiles "
        "(`compileall`, unchecked hashes): Lambda's code directories are read-only, so without it each cold start "
        "compiles every module it imports (the cold start section measures what that costs).",
        "",
        f"Run time: {result['run_seconds']:.1f} s{' (quick)' if result['quick'] else ''}.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    figures = run(quick="--quick" in sys.argv)
    print(json.dumps(figures, indent=2))
    print(markdown(figures))
