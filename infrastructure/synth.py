"""`make synth`: write the template of one stage to cdk.out with the built layers, and summarise it.

Takes context like the CDK CLI: `python -m infrastructure.synth -c stage=prod -c spec=path/to/spec.toml`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from infrastructure.app import build_app, missing_sources
from infrastructure.config import built_sources


def parse_context(pairs: list[str]) -> dict[str, object]:
    context: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"context must be key=value, got {pair!r}")
        context[key] = value
    return context


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Synthesise one stage into cdk.out")
    parser.add_argument("-c", "--context", action="append", default=[], help="key=value, as for the CDK CLI")
    parser.add_argument("-o", "--output", default="cdk.out")
    args = parser.parse_args(argv)
    missing = missing_sources(built_sources())
    if missing:
        print(f"not built yet: {', '.join(missing)} (run `make layers`)", file=sys.stderr)
        return 1
    app, stack = build_app(context=parse_context(args.context), outdir=args.output)
    report_path = Path(args.output) / "validation-report.json"
    try:
        assembly = app.synth()
    except RuntimeError as err:
        # cdk-nag runs as a validation plugin: an unacknowledged finding fails the synthesis.
        print(f"synthesis failed: {err}\nfindings: {report_path}", file=sys.stderr)
        return 1
    artifact = assembly.get_stack_artifact(stack.artifact_id)
    print(f"stack {stack.stack_name}: {assembly.directory}/{artifact.template_file}")
    print(f"resources: {len(artifact.template.get('Resources', {}))}")
    for plugin in json.loads(report_path.read_text())["pluginReports"]:
        acknowledged = plugin.get("suppressedViolations", [])
        print(
            f"{plugin['pluginName']}: {plugin['conclusion']}, "
            f"{len(plugin['violations'])} open findings, {len(acknowledged)} acknowledged with reasons"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
