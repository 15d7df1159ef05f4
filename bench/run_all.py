"""Run every benchmark script of this folder in turn and print what each prints (`make bench`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# One line per benchmark; each is a script (with its arguments) that prints its own figures.
BENCHMARKS = [
    ["serving.py"],
    ["monitor.py"],
    ["monitor.py", "--task", "regression", "--rows", "100000", "--reference-rows", "20000"],
    ["load.py"],
    ["training.py"],
    ["estimation.py"],
    ["loop.py", "--quick"],
]


def main() -> int:
    failed = 0
    for name, *args in BENCHMARKS:
        print(f"== {name} {' '.join(args)}".rstrip(), flush=True)
        failed += subprocess.run([sys.executable, str(HERE / name), *args], check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
