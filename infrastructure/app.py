"""The CDK app that `npx aws-cdk@2 deploy -c stage=dev -c spec=<spec.toml>` runs (see cdk.json)."""

from __future__ import annotations

import os

# jsii warns on every start when Node.js is past its end of life; the warning says nothing about
# the template, so it is silenced for the Node release in use.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from infrastructure.config import ArtifactSources, StageConfig, built_sources
from infrastructure.stack import MlopsStack

# Behaviour flags the stack relies on, set here rather than in cdk.json so tests get them too.
FEATURE_FLAGS = {
    # Access-log delivery by bucket policy instead of ACLs (our buckets disable ACLs).
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
    "@aws-cdk/aws-iam:minimizePolicies": True,
    "@aws-cdk/aws-lambda:recognizeLayerVersion": True,
    "@aws-cdk/core:target-partitions": ["aws"],
}


def build_app(
    context: dict[str, object] | None = None,
    sources: ArtifactSources | None = None,
    outdir: str | None = None,
) -> tuple[App, MlopsStack]:
    """The app with its one stack (named after the stage) and cdk-nag checking it at synthesis."""
    app = App(context={**FEATURE_FLAGS, **(context or {})}, outdir=outdir)
    config = StageConfig.from_context(app.node.try_get_context)
    env = Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
    )
    stack = MlopsStack(app, config.stack_name, config=config, sources=sources or built_sources(), env=env)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


def missing_sources(sources: ArtifactSources) -> list[str]:
    built = (sources.functions_dir, sources.serving_layer_dir, sources.ml_image_dir)
    return [str(p) for p in built if not p.is_dir()]


def main() -> None:
    missing = missing_sources(built_sources())
    if missing:
        raise SystemExit(f"not built yet: {', '.join(missing)} (run `make layers`)")
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()
