"""Run the built artifact on this machine the way Lambda runs it: tests and benchmarks share this.

A fresh ``python3.12 -I -S`` process (no site-packages, no PYTHON* variables) sees only a
read-only copy of the code asset, a read-only copy of the layer and the runtime's AWS SDK,
through ``layers/runtime/bootstrap.py``. Nothing of the development environment leaks in, so
a module missing from a layer fails here as it would on Lambda.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import shutil
import stat
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infrastructure.lambdas import LAYER_BUILD_DIR, LAYERS_DIR, Layer

LAMBDA_PYTHON_VERSION = (3, 12)
# The architecture the stack deploys (infrastructure/components/function.py); its build is the
# one in layers/build/<layer>. Other architectures build into layers/build/<arch>/<layer>.
DEPLOYED_ARCH = "arm64"
ARCHITECTURES = ("arm64", "x86_64")
BOOTSTRAP = LAYERS_DIR / "runtime" / "bootstrap.py"
PROTOCOL_PREFIX = "@@"
# Capabilities that let root write where file modes forbid it; dropped so a read-only copy is
# read-only for root too, as /var/task and /opt are for Lambda's unprivileged user.
ROOT_WRITE_CAPABILITIES = "-dac_override,-dac_read_search,-fowner,-linux_immutable"


class ArtifactError(RuntimeError):
    """The artifact cannot be built, started or run as Lambda would run it."""


def host_arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


def variant_dir(arch: str) -> Path:
    """Where `layers/build.py --arch` writes that architecture's dependency sets."""
    return LAYER_BUILD_DIR if arch == DEPLOYED_ARCH else LAYER_BUILD_DIR / arch


def layer_dir(layer: Layer, arch: str = DEPLOYED_ARCH) -> Path:
    """A layer asset: its `python/` subdirectory lands on sys.path as /opt/python."""
    return variant_dir(arch) / layer.value


def runtime_dir(arch: str) -> Path:
    """The AWS SDK as the Lambda runtime provides it (layers/runtime/requirements.txt)."""
    return variant_dir(arch) / "runtime"


def _is_lambda_python(candidate: str) -> bool:
    try:
        out = subprocess.run(
            [candidate, "-I", "-S", "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return False
    return out.returncode == 0 and out.stdout.split() == [str(v) for v in LAMBDA_PYTHON_VERSION]


@functools.cache
def lambda_python() -> str:
    """A Python 3.12 interpreter (the runtime's version): $LAMBDA_PYTHON, python3.12, or pyenv's 3.12.

    Raises ArtifactError naming what to install: bytecode and cold starts of another version
    would say nothing about Lambda's.
    """
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    candidates = [os.environ.get("LAMBDA_PYTHON"), shutil.which("python3.12")]
    candidates += [str(p) for p in sorted(pyenv.glob("3.12*/bin/python3.12"), reverse=True)]
    for candidate in candidates:
        if candidate and _is_lambda_python(candidate):
            return candidate
    version = ".".join(map(str, LAMBDA_PYTHON_VERSION))
    raise ArtifactError(
        f"no Python {version} found (tried $LAMBDA_PYTHON, python{version} on PATH and {pyenv}/{version}*): "
        f"install Python {version}, the Lambda runtime's version, or set LAMBDA_PYTHON to one"
    )


def read_only_copy(src: Path, dest: Path) -> Path:
    """Copy `src` to `dest` and take every write permission away, as Lambda mounts /var/task and /opt."""
    if not src.is_dir():
        raise ArtifactError(f"{src} is not built: run `make layers ARCH={host_arch()}`")
    shutil.copytree(src, dest, symlinks=True)
    for dirpath, dirnames, filenames in os.walk(dest, topdown=False):
        for name in [*filenames, *dirnames]:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) & ~0o222)
    os.chmod(dest, stat.S_IMODE(dest.stat().st_mode) & ~0o222)
    return dest


def remove_read_only(path: Path) -> None:
    """Give write permission back and delete a tree made by `read_only_copy`."""
    if not path.exists():
        return
    for dirpath, _dirs, _files in os.walk(path):
        os.chmod(dirpath, stat.S_IMODE(os.stat(dirpath).st_mode) | 0o200)
    shutil.rmtree(path)


def _unprivileged(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise ArtifactError(
            "running as root, where file modes do not stop writes: setpriv (util-linux) is needed "
            "to drop the capabilities that bypass them"
        )
    return [setpriv, f"--bounding-set={ROOT_WRITE_CAPABILITIES}", "--inh-caps=-all", "--", *cmd]


@dataclass(frozen=True)
class ArtifactLayout:
    """The folders a function sees: code asset (/var/task), layer python/ dirs (/opt), the SDK."""

    task: Path
    layers: tuple[Path, ...]
    runtime: Path

    def command(self, *mode: str) -> list[str]:
        cmd = [lambda_python(), "-I", "-S", str(BOOTSTRAP), "--task", str(self.task)]
        for layer in self.layers:
            cmd += ["--layer", str(layer)]
        return _unprivileged([*cmd, "--runtime", str(self.runtime), *mode])


def lambda_environment(function_name: str, values: Mapping[str, str]) -> dict[str, str]:
    """The variables Lambda sets, with the function's own; nothing of this shell's environment."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        # No shared config or credentials file of this machine may stand in for the role.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        **values,
    }


class LambdaProcess:
    """One cold-started function: init (import the handler) on start, then `invoke` per event."""

    def __init__(
        self,
        layout: ArtifactLayout,
        handler: str,
        function_name: str,
        environment: Mapping[str, str],
        memory_mb: int = 1024,
        timeout_s: float = 30.0,
    ) -> None:
        self.function_name = function_name
        self.memory_mb = memory_mb
        self.timeout_s = timeout_s
        self.proc = subprocess.Popen(
            layout.command("--handler", handler),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=lambda_environment(function_name, environment),
        )
        self._stderr: list[str] = []
        # Drained all along: a function that logs more than a pipe holds must not stall.
        self._drain = threading.Thread(target=self._collect_stderr, daemon=True)
        self._drain.start()
        kind, value = self._read()
        if kind != "init":
            self.close()
            raise ArtifactError(f"{function_name} failed to start ({handler}): {self._describe(value)}")
        self.init: dict[str, Any] = value

    def _collect_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    def _describe(self, value: Any) -> str:
        if isinstance(value, dict) and "trace" in value:
            return f"{value['type']}: {value['message']}\n{value['trace']}"
        return f"{value}\n{self.stderr()[-3000:]}"

    def _read(self) -> tuple[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(PROTOCOL_PREFIX):
                ((kind, value),) = json.loads(line[len(PROTOCOL_PREFIX) :]).items()
                return kind, value
        self.proc.wait(timeout=30)
        return "exit", f"exit status {self.proc.returncode}"

    def _request(self, request: dict[str, Any]) -> tuple[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def invoke(self, event: Any) -> Any:
        """The handler's answer; ArtifactError if the function raised (a function error on Lambda)."""
        kind, value = self._request(
            {
                "event": event,
                "function_name": self.function_name,
                "memory_mb": self.memory_mb,
                "timeout_s": self.timeout_s,
            }
        )
        if kind != "result":
            raise ArtifactError(f"{self.function_name} failed: {self._describe(value)}")
        return value

    def report(self) -> dict[str, Any]:
        """Origins, source compiles and write refusals as of now (after invocations)."""
        kind, value = self._request({"report": True})
        if kind != "report":
            raise ArtifactError(f"{self.function_name} did not report: {self._describe(value)}")
        return dict(value)

    def stderr(self) -> str:
        """What the function printed (logs, metrics); complete once the process has been closed."""
        return "".join(self._stderr)

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._drain.join(timeout=30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> LambdaProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
