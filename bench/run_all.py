"""Run every benchmark script of this folder in turn and print what each prints (`make bench`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# One line per benchmark; each is a script that prints its own figures.
BENCHMARKS = [
    "serving.py",
    "monitor.py",
    "load.py",
    "training.py",
    "estimation.py",
]


def main() -> int:
    failed = 0
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        failed += subprocess.run([sys.executable, str(HERE / name)], check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
