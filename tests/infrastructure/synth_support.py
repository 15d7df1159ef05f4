"""Synthesis of the stack in-process, with stand-ins for the built layers (no pip, no Docker)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")

from aws_cdk.assertions import Template

from infrastructure.app import build_app
from infrastructure.config import ArtifactSources
from infrastructure.lambdas import assemble_code_asset, assemble_image_context
from infrastructure.nag import logical_id
from infrastructure.stack import MlopsStack

ALARM_EMAIL = "ops@example.com"


@dataclass
class Synthesised:
    stack: MlopsStack
    template: Template
    resources: dict[str, Any]
    validation_report: dict[str, Any]
    template_path: Path

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == cfn_type}

    def ref(self, construct: Any) -> str:
        return logical_id(construct)


def stand_in_sources(root: Path) -> ArtifactSources:
    """The real function code (uncompiled) and image context, and an empty serving layer: no pip."""
    layer = root / "serving-layer"
    (layer / "python").mkdir(parents=True)
    (layer / "python" / "README.txt").write_text("stand-in for layers/build/serving\n")
    return ArtifactSources(
        functions_dir=assemble_code_asset(root / "code"),
        serving_layer_dir=layer,
        ml_image_dir=assemble_image_context(root / "ml-image"),
    )


def synthesise(root: Path, context: dict[str, object]) -> Synthesised:
    outdir = root / "cdk.out"
    app, stack = build_app(context=context, sources=stand_in_sources(root), outdir=str(outdir))
    assembly = app.synth()
    artifact = assembly.get_stack_artifact(stack.artifact_id)
    template_path = Path(assembly.directory) / artifact.template_file
    return Synthesised(
        stack=stack,
        template=Template.from_json(artifact.template),
        resources=artifact.template["Resources"],
        validation_report=json.loads((outdir / "validation-report.json").read_text()),
        template_path=template_path,
    )
