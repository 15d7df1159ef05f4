"""cdk-nag acknowledgements: each finding this stack accepts, with the reason next to it.

Findings tied to one grant (an S3 prefix, an API path parameter) are acknowledged where the
grant is made, through `acknowledge`; the stack-wide ones are acknowledged next to the stack
they read (`infrastructure.stack.acknowledge_findings`), so this module imports nothing of the app.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from constructs import IConstruct

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
