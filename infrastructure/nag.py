"""cdk-nag acknowledgements: each finding this stack accepts, with the reason next to it.

Findings tied to one grant (an S3 prefix, an API path parameter) are acknowledged where the
grant is made, through `acknowledge`; the stack-wide ones are in `acknowledge_findings`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from constructs import IConstruct

if TYPE_CHECKING:
    from infrastructure.stack import MlopsStack

PACK = "AwsSolutions"


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """Accept one cdk-nag finding (`IAM5[Resource::...]`, `L1`) on `scope` and its children."""
    # Validation plugins address rules as "<plugin>::<rule>"; cdk-nag's rules carry the pack prefix.
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{PACK}::{PACK}-{finding}", reason=reason))


def logical_id(construct: IConstruct) -> str:
    """The template logical id of an L2 construct's resource, as cdk-nag spells it in findings."""
    element = construct.node.default_child
    assert isinstance(element, CfnElement), f"{construct.node.path} has no CloudFormation resource"
    stack = Stack.of(construct)
    return str(stack.resolve(stack.get_logical_id(element)))


def acknowledge_findings(stack: MlopsStack) -> None:
    for fn in stack.functions:
        reason = (
            "X-Ray trace upload (xray:PutTraceSegments, PutTelemetryRecords) has no resource-level "
            "permissions, so active tracing needs Resource '*'."
        )
        if fn is stack.monitoring.monitor:
            reason += (
                " cloudwatch:PutMetricData has none either; it is bound by a condition on the "
                "ServerlessMLOps namespace instead."
            )
        acknowledge(fn.role, "IAM5[Resource::*]", reason)
        if not fn.definition.layer.ships_as_image:
            acknowledge(
                fn.function,
                "L1",
                "Python 3.12 on purpose: the serving layer's binary wheels (onnxruntime, numpy, "
                "pydantic-core) are built for cp312 by layers/build.py; runtime and layer move together.",
            )
