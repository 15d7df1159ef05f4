"""Build the code asset and the Lambda layers without Docker (pip cross-install), and check sizes.

python layers/build.py                  # arm64, as deployed: layers/build/code, layers/build/<layer>
python layers/build.py --check          # build, then assert function + layers < limit with headroom
python layers/build.py --arch x86_64 --runtime
                                        # the same pins for x86_64 in layers/build/x86_64/<layer>,
                                        # with the runtime's AWS SDK, to run the artifact here

Everything shipped carries bytecode compiled by Python 3.12 (the runtime's version) with
unchecked-hash invalidation: /var/task and /opt are read-only, so a cold start can neither
write bytecode nor afford to compile, and no timestamp can make the shipped bytecode stale.
Functions whose set ships as a container image (`Layer.ships_as_image`) get the image's build
context in layers/build/ml-image instead; their set is still installed here to be measured.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infrastructure.artifact import (  # noqa: E402  (the repo root must be importable first)
    ARCHITECTURES,
    DEPLOYED_ARCH,
    ArtifactError,
    host_arch,
    lambda_python,
    layer_dir,
    runtime_dir,
)
from infrastructure.lambdas import (  # noqa: E402
    CODE_ASSET_DIR,
    FUNCTIONS,
    LAYER_BUILD_DIR,
    LAYERS_DIR,
    REQUIRED_HEADROOM,
    SERVING_SDK_SERVICES,
    UNZIPPED_LIMIT_BYTES,
    Layer,
    assemble_code_asset,
    assemble_image_context,
)

IMAGE_LIMIT_BYTES = 10_737_418_240
PYTHON_VERSION = "3.12"
# The Lambda Python 3.12 runtime runs Amazon Linux 2023 (glibc 2.34): both tags load there.
PLATFORMS = {
    "arm64": ("manylinux2014_aarch64", "manylinux_2_28_aarch64"),
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_28_x86_64"),
}
RUNTIME_REQUIREMENTS = LAYERS_DIR / "runtime" / "requirements.txt"
# Where Lambda mounts each part; recorded in the bytecode as the file name tracebacks show.
TASK_ROOT = "/var/task"
LAYER_ROOT = "/opt/python"
RUNTIME_ROOT = "/var/runtime"
COMPILE_OPTIONS = ("-q", "-j", "0", "--invalidation-mode", "unchecked-hash")
# Never shipped in the serving layer: they would triple its size and its cold start.
FORBIDDEN_IN_SERVING = ("sklearn", "scipy", "pandas")

# Removed after install: nothing imports them at run time.
STRIP_DIR_NAMES = {"tests", "bin"}
STRIP_SUFFIXES = {".pyx", ".pxd", ".pxi", ".c", ".cpp", ".h", ".hpp", ".md", ".rst"}
# Test-only data inside packages whose test code is itself importable (onnx ships its
# backend conformance models, several megabytes).
STRIP_PATHS = ("onnx/backend/test/data",)


def _fingerprint(requirements: Path, arch: str) -> str:
    h = hashlib.sha256(requirements.read_bytes())
    h.update(repr((PYTHON_VERSION, arch, sorted(STRIP_DIR_NAMES), sorted(STRIP_SUFFIXES))).encode())
    h.update(repr(SERVING_SDK_SERVICES).encode())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()


def compile_bytecode(root: Path, shipped_at: str) -> None:
    """Compile every module under `root` with Python 3.12, as unchecked-hash bytecode.

    `shipped_at` is where the tree lands on Lambda: the file name the bytecode records.
    """
    cmd = [lambda_python(), "-I", "-m", "compileall", *COMPILE_OPTIONS, "-d", shipped_at, str(root)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ArtifactError(f"bytecode compilation failed under {root}:\n{result.stdout}{result.stderr}")


def _strip(site: Path) -> None:
    for rel in STRIP_PATHS:
        shutil.rmtree(site / rel, ignore_errors=True)
    for path in sorted(site.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and path.name in STRIP_DIR_NAMES:
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.suffix in STRIP_SUFFIXES and "dist-info" not in path.parent.name:
            path.unlink()


def _blank_documentation(value: object) -> object:
    """A service model with every documentation text empty: the keys stay, as botocore reads some."""
    if isinstance(value, dict):
        return {
            k: "" if k == "documentation" and isinstance(v, str) else _blank_documentation(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_blank_documentation(v) for v in value]
    return value


def slim_sdk(site: Path, services: tuple[str, ...]) -> None:
    """Keep the AWS SDK's data for `services` only, so creating a client parses less.

    A first client made botocore parse endpoints.json (every service in every region), list all
    400-odd service folders, and parse each service model with its documentation: about 0.1 s
    of a predict cold start, more than the three calls it then makes. What stays is botocore's
    own data folder, so endpoint resolution works exactly as with the full SDK: `endpoints.json`
    keeps the entries of `services` in every partition, and the service models every operation
    and shape, with empty documentation texts, as plain JSON.
    """
    data = site / "botocore" / "data"
    for folder in data.iterdir():
        if folder.is_dir() and folder.name not in services:
            shutil.rmtree(folder)
    for service in services:
        for version in (data / service).iterdir():
            for path in list(version.iterdir()):
                if path.name.startswith(("examples-1.", "waiters-2.")):
                    path.unlink()
                elif path.name in ("service-2.json", "service-2.json.gz"):
                    raw = path.read_bytes()
                    model = json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)
                    path.unlink()
                    slim = json.dumps(_blank_documentation(model), separators=(",", ":"))
                    (version / "service-2.json").write_text(slim)
    endpoints = json.loads((data / "endpoints.json").read_text())
    for partition in endpoints["partitions"]:
        partition["services"] = {k: v for k, v in partition["services"].items() if k in services}
    (data / "endpoints.json").write_text(json.dumps(endpoints, separators=(",", ":")))
    resources = site / "boto3" / "data"
    for folder in resources.iterdir() if resources.is_dir() else ():
        if folder.is_dir() and folder.name not in services:
            shutil.rmtree(folder)


def _install(
    name: str,
    requirements: Path,
    site: Path,
    arch: str,
    shipped_at: str,
    force: bool,
    sdk_services: tuple[str, ...] | None = None,
) -> None:
    """pip-install `requirements` for `arch` into `site`, strip it, compile it; skip if unchanged."""
    stamp = site.parent / f".{site.name}.fingerprint"
    fingerprint = _fingerprint(requirements, arch)
    if not force and site.is_dir() and stamp.is_file() and stamp.read_text() == fingerprint:
        print(f"{name} ({arch}): up to date ({site})")
        return
    shutil.rmtree(site, ignore_errors=True)
    stamp.unlink(missing_ok=True)
    site.mkdir(parents=True)
    # pip would compile with the interpreter running it, not the runtime's 3.12: compiled below.
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check"]
    # The target directory is not the running environment: conflicts with it are irrelevant.
    cmd += ["--no-warn-conflicts"]
    for platform in PLATFORMS[arch]:
        cmd += ["--platform", platform]
    cmd += ["--only-binary=:all:", "--python-version", PYTHON_VERSION, "--implementation", "cp"]
    cmd += ["-t", str(site), "-r", str(requirements)]
    print(f"{name} ({arch}): {' '.join(cmd[3:])}", flush=True)
    subprocess.run(cmd, check=True)
    _strip(site)
    if sdk_services is not None:
        slim_sdk(site, sdk_services)
    compile_bytecode(site, shipped_at)
    stamp.write_text(fingerprint)


def build(layer: Layer, arch: str = DEPLOYED_ARCH, force: bool = False) -> Path:
    out = layer_dir(layer, arch)
    services = SERVING_SDK_SERVICES if layer is Layer.SERVING else None
    _install(f"layer {layer.value}", layer.requirements, out / "python", arch, LAYER_ROOT, force, services)
    return out


def build_runtime(arch: str, force: bool = False) -> Path:
    """The AWS SDK the Lambda runtime provides, to run the artifact on this machine."""
    out = runtime_dir(arch)
    _install("runtime SDK", RUNTIME_REQUIREMENTS, out, arch, RUNTIME_ROOT, force)
    return out


def build_code() -> Path:
    """The function code asset: functions/ without CODE_EXCLUDES, with its 3.12 bytecode."""
    out = assemble_code_asset(CODE_ASSET_DIR)
    compile_bytecode(out, TASK_ROOT)
    print(f"code asset: {out}")
    return out


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def check() -> bool:
    """Print every function's unzipped size with its layer; False if one lacks the headroom.

    Image functions are held to the image limit; their row also shows the zip-limit share that
    made them images, and a note appears if the set would fit a layer again.
    """
    budget = int(UNZIPPED_LIMIT_BYTES * (1 - REQUIRED_HEADROOM))
    image_budget = int(IMAGE_LIMIT_BYTES * (1 - REQUIRED_HEADROOM))
    code = tree_size(CODE_ASSET_DIR)
    layer_sizes = {layer: tree_size(layer_dir(layer)) for layer in Layer}
    ok = True
    serving = layer_dir(Layer.SERVING) / "python"
    shipped = [name for name in FORBIDDEN_IN_SERVING if (serving / name).exists()]
    if shipped:
        print(f"FAIL: the serving layer contains {', '.join(shipped)}")
        ok = False
    header = f"{'function':<10} {'deps':<8} {'code':>12} {'deps':>12} {'total':>12} {'of zip limit':>13}"
    print(header + "  packaging")
    for fn in FUNCTIONS:
        total = code + layer_sizes[fn.layer]
        share = total / UNZIPPED_LIMIT_BYTES
        if fn.layer.ships_as_image:
            fits = total <= image_budget
            verdict = f"image ({total / IMAGE_LIMIT_BYTES:.1%} of 10 GB)" if fits else "TOO BIG for an image"
            if total <= budget:
                verdict += "; would fit a zip layer now"
        else:
            fits = total <= budget
            verdict = "zip + layer" if fits else "TOO BIG"
        ok = ok and fits
        row = f"{fn.key:<10} {fn.layer.value:<8} {code:>12,} {layer_sizes[fn.layer]:>12,} {total:>12,}"
        print(f"{row} {share:>13.1%}  {verdict}")
    print(
        f"limit {UNZIPPED_LIMIT_BYTES:,} bytes unzipped; "
        f"budget with {REQUIRED_HEADROOM:.0%} headroom {budget:,}"
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="assert the size limit after building")
    parser.add_argument(
        "--force", action="store_true", help="rebuild even if the requirements did not change"
    )
    parser.add_argument(
        "--arch",
        choices=[*ARCHITECTURES, "host"],
        default=DEPLOYED_ARCH,
        help=f"the wheels' architecture (default {DEPLOYED_ARCH}, as deployed; host: this machine's)",
    )
    parser.add_argument(
        "--runtime", action="store_true", help="also install the AWS SDK the Lambda runtime provides"
    )
    args = parser.parse_args(argv)
    arch = host_arch() if args.arch == "host" else args.arch
    if args.check and arch != DEPLOYED_ARCH:
        parser.error(f"--check measures what is deployed: {DEPLOYED_ARCH}")
    try:
        code = build_code()
        for layer in Layer:
            build(layer, arch, force=args.force)
            if layer.ships_as_image and arch == DEPLOYED_ARCH:
                context = assemble_image_context(LAYER_BUILD_DIR / f"{layer.value}-image", code)
                print(f"image {layer.value}: build context in {context}")
        if args.runtime:
            build_runtime(arch, force=args.force)
    except ArtifactError as err:
        print(f"FAIL: {err}", file=sys.stderr)
        return 1
    if args.check:
        return 0 if check() else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
