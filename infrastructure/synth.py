"""`make synth`: write the template of one stage to cdk.out with the built layers, and summarise it."""

from __future__ import annotations

import sys

from infrastructure.app import build_app, missing_sources
from infrastructure.config import built_sources


def main() -> int:
    missing = missing_sources(built_sources())
    if missing:
        print(f"not built yet: {', '.join(missing)} (run `make layers`)", file=sys.stderr)
        return 1
    app, stack = build_app(outdir="cdk.out")
    assembly = app.synth()
    artifact = assembly.get_stack_artifact(stack.artifact_id)
    findings = [
        m
        for m in artifact.messages
        if "AwsSolutions-" in str(m.entry.data) and m.level in ("error", "warning")
    ]
    print(f"stack {stack.stack_name}: {assembly.directory}/{artifact.template_file}")
    print(f"resources: {len(artifact.template.get('Resources', {}))}, cdk-nag findings: {len(findings)}")
    for m in findings:
        print(f"  {m.level}: {m.id}: {m.entry.data}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
