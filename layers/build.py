"""Build the Lambda layers without Docker (pip cross-install of arm64 wheels) and check their size.

python layers/build.py           # build what changed into layers/build/<layer>/python
python layers/build.py --check   # build, then assert function + layers < limit with headroom

Functions whose set ships as a container image (`Layer.ships_as_image`) get the image's build
context in layers/build/ml-image instead; their set is still installed here to be measured.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infrastructure.lambdas import (  # noqa: E402  (the repo root must be importable first)
    CODE_EXCLUDES,
    FUNCTIONS,
    FUNCTIONS_DIR,
    LAYER_BUILD_DIR,
    REQUIRED_HEADROOM,
    UNZIPPED_LIMIT_BYTES,
    Layer,
    assemble_image_context,
)

IMAGE_LIMIT_BYTES = 10_737_418_240
PYTHON_VERSION = "3.12"
# The Lambda Python 3.12 runtime runs Amazon Linux 2023 (glibc 2.34): both tags load there.
PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
# Never shipped in the serving layer: they would triple its size and its cold start.
FORBIDDEN_IN_SERVING = ("sklearn", "scipy", "pandas")

# Removed after install: nothing imports them at run time.
STRIP_DIR_NAMES = {"tests", "__pycache__", "bin"}
STRIP_SUFFIXES = {".pyc", ".pyx", ".pxd", ".pxi", ".c", ".cpp", ".h", ".hpp", ".md", ".rst"}
# Test-only data inside packages whose test code is itself importable (onnx ships its
# backend conformance models, several megabytes).
STRIP_PATHS = ("onnx/backend/test/data",)


def _fingerprint(layer: Layer) -> str:
    h = hashlib.sha256(layer.requirements.read_bytes())
    h.update(repr((PYTHON_VERSION, PLATFORMS, sorted(STRIP_DIR_NAMES), sorted(STRIP_SUFFIXES))).encode())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()


def layer_dir(layer: Layer) -> Path:
    """The layer asset: its `python/` subdirectory lands on sys.path as /opt/python."""
    return LAYER_BUILD_DIR / layer.value


def _strip(site: Path) -> None:
    for rel in STRIP_PATHS:
        shutil.rmtree(site / rel, ignore_errors=True)
    for path in sorted(site.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and path.name in STRIP_DIR_NAMES:
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.suffix in STRIP_SUFFIXES and "dist-info" not in path.parent.name:
            path.unlink()


def build(layer: Layer, force: bool = False) -> Path:
    out = layer_dir(layer)
    stamp = out / ".fingerprint"
    fingerprint = _fingerprint(layer)
    if not force and stamp.is_file() and stamp.read_text() == fingerprint:
        print(f"layer {layer.value}: up to date ({out})")
        return out
    shutil.rmtree(out, ignore_errors=True)
    site = out / "python"
    site.mkdir(parents=True)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check"]
    # The target directory is not the running environment: conflicts with it are irrelevant.
    cmd += ["--no-warn-conflicts"]
    for platform in PLATFORMS:
        cmd += ["--platform", platform]
    cmd += ["--only-binary=:all:", "--python-version", PYTHON_VERSION, "--implementation", "cp"]
    cmd += ["-t", str(site), "-r", str(layer.requirements)]
    print(f"layer {layer.value}: {' '.join(cmd[3:])}")
    subprocess.run(cmd, check=True)
    _strip(site)
    stamp.write_text(fingerprint)
    return out


def _excluded(rel: Path) -> bool:
    return any(
        rel.match(pattern) or any(part.match(pattern) for part in _parents(rel)) for pattern in CODE_EXCLUDES
    )


def _parents(rel: Path) -> Iterable[Path]:
    return [Path(*rel.parts[: i + 1]) for i in range(len(rel.parts) - 1)]


def tree_size(root: Path, skip_excluded: bool = False) -> int:
    total = 0
    for path in root.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        if skip_excluded and _excluded(path.relative_to(root)):
            continue
        total += path.stat().st_size
    return total


def check() -> bool:
    """Print every function's unzipped size with its layer; False if one lacks the headroom.

    Image functions are held to the image limit; their row also shows the zip-limit share that
    made them images, and a note appears if the set would fit a layer again.
    """
    budget = int(UNZIPPED_LIMIT_BYTES * (1 - REQUIRED_HEADROOM))
    image_budget = int(IMAGE_LIMIT_BYTES * (1 - REQUIRED_HEADROOM))
    code = tree_size(FUNCTIONS_DIR, skip_excluded=True)
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
    args = parser.parse_args(argv)
    for layer in Layer:
        build(layer, force=args.force)
        if layer.ships_as_image:
            context = assemble_image_context(LAYER_BUILD_DIR / f"{layer.value}-image")
            print(f"image {layer.value}: build context in {context}")
    if args.check:
        return 0 if check() else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
