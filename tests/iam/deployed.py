"""What the synthesized template gives each function's role, resolved onto the moto resources.

Synthesis runs jsii and takes most of a minute, so the parts the IAM tier needs (the template, and
which logical id is which function's role and which resource of `mlops.shared.resources`) are cached in
pytest's cache under a key made from every file the stack is built from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from mlops.shared.resources import ALL_RESOURCES, ResourceKind

from tests.iam.policy import ACCOUNT, PARTITION, REGION, function_arn, queue_arn, table_arn

ROOT = Path(__file__).resolve().parents[2]
# Bindings of the template that are not in `mlops.shared.resources`.
TOPIC_KEY = "TopicKey"
RETRAIN_FUNCTION = "RetrainFunction"
# Stand-in ARN of the topic's KMS key (moto's SNS does not encrypt, so no key is needed there).
TOPIC_KEY_ARN = f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/0b5e0d6c-6c43-4c1b-9c55-6a0c4a1f9e01"
PSEUDO = {
    "AWS::Partition": PARTITION,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
}


def source_digest() -> str:
    """Changes whenever anything the template is built from changes."""
    digest = hashlib.sha256()
    files = [
        *sorted((ROOT / "infrastructure").rglob("*.py")),
        *sorted((ROOT / "functions" / "mlops").rglob("*.py")),
        *sorted((ROOT / "functions" / "mlops" / "examples").rglob("*.toml")),
        ROOT / "tests" / "infrastructure" / "synth_support.py",
        ROOT / "cdk.json",
    ]
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    for dist in ("aws-cdk-lib", "cdk-nag", "constructs"):
        digest.update(f"{dist}={metadata.version(dist)}".encode())
    return digest.hexdigest()[:24]


@dataclass(frozen=True)
class DeployedStack:
    template: dict[str, Any]
    roles: dict[str, str]  # function key -> logical id of its role
    bindings: dict[
        str, str
    ]  # mlops.shared.resources logical id (and the extras above) -> template logical id

    def to_json(self) -> dict[str, Any]:
        return {"template": self.template, "roles": self.roles, "bindings": self.bindings}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DeployedStack:
        return cls(dict(data["template"]), dict(data["roles"]), dict(data["bindings"]))

    @classmethod
    def from_synthesised(cls, synth: Any) -> DeployedStack:
        stack = synth.stack
        constructs: dict[str, Any] = {
            **stack.storage.buckets,
            **stack.registry.tables,
            "PredictionQueue": stack.prediction_log.queue,
            "AlarmTopic": stack.notifications.topic,
            TOPIC_KEY: stack.notifications.key,
            RETRAIN_FUNCTION: stack.training.retrain.function,
        }
        return cls(
            template=synth.template.to_json(),
            roles={fn.definition.key: synth.ref(fn.role) for fn in stack.functions},
            bindings={name: synth.ref(c) for name, c in constructs.items()},
        )

    @property
    def resources(self) -> dict[str, Any]:
        return dict(self.template["Resources"])

    def role_statements(self, function_key: str) -> list[dict[str, Any]]:
        """Every statement of every policy on the function's role, intrinsics unresolved."""
        role = self.roles[function_key]
        statements: list[dict[str, Any]] = []
        for resource in self.resources.values():
            props = resource.get("Properties", {})
            if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and {
                "Ref": role
            } in props.get("Roles", []):
                statements += _as_list(props["PolicyDocument"]["Statement"])
        role_props = self.resources[role]["Properties"]
        assert not role_props.get("ManagedPolicyArns"), f"{function_key}: managed policies are not evaluated"
        for inline in role_props.get("Policies", []):
            statements += _as_list(inline["PolicyDocument"]["Statement"])
        return statements


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def moto_bindings(deployed: DeployedStack, env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Template logical id -> {"Ref": ..., attribute: ...} for every resource the moto stack has."""
    out: dict[str, dict[str, str]] = {}
    for res in ALL_RESOURCES:
        logical = deployed.bindings.get(res.logical_id)
        value = env.get(res.env_var)
        if logical is None or value is None:
            continue
        if res.kind is ResourceKind.BUCKET:
            out[logical] = {"Ref": value, "Arn": f"arn:{PARTITION}:s3:::{value}"}
        elif res.kind is ResourceKind.TABLE:
            out[logical] = {"Ref": value, "Arn": table_arn(value)}
        elif res.kind is ResourceKind.QUEUE:
            arn = queue_arn(value)
            out[logical] = {"Ref": value, "Arn": arn, "QueueName": arn.rsplit(":", 1)[-1]}
        elif res.kind is ResourceKind.TOPIC:
            out[logical] = {"Ref": value, "TopicArn": value, "TopicName": value.rsplit(":", 1)[-1]}
    out[deployed.bindings[TOPIC_KEY]] = {"Ref": TOPIC_KEY_ARN.rsplit("/", 1)[-1], "Arn": TOPIC_KEY_ARN}
    retrain_name = env.get("MLOPS_RETRAIN_FUNCTION_NAME")
    if retrain_name:
        out[deployed.bindings[RETRAIN_FUNCTION]] = {"Ref": retrain_name, "Arn": function_arn(retrain_name)}
    return out


def resolve(value: Any, bindings: Mapping[str, Mapping[str, str]]) -> Any:
    """Evaluate the intrinsics IAM statements use; an unbound resource becomes an ARN nothing matches."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list):
        return [resolve(v, bindings) for v in value]
    if not isinstance(value, dict):
        raise TypeError(f"unexpected template value {value!r}")
    if len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Ref":
            return PSEUDO.get(arg) or bindings.get(arg, {}).get("Ref", f"unbound:{arg}")
        if fn == "Fn::GetAtt":
            logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return bindings.get(logical, {}).get(attribute, f"unbound:{logical}.{attribute}")
        if fn == "Fn::Join":
            separator, parts = arg
            return separator.join(str(resolve(p, bindings)) for p in parts)
        if fn.startswith("Fn::"):
            raise ValueError(f"intrinsic {fn} is not resolved here; add it")
    return {k: resolve(v, bindings) for k, v in value.items()}


def topic_keys(deployed: DeployedStack, bindings: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """Encrypted topics (ARN as moto has it) and the ARN of the KMS key each is encrypted with."""
    out = {}
    for logical, resource in deployed.resources.items():
        if resource["Type"] == "AWS::SNS::Topic" and "KmsMasterKeyId" in resource.get("Properties", {}):
            arn = resolve({"Ref": logical}, bindings)
            out[arn] = resolve(resource["Properties"]["KmsMasterKeyId"], bindings)
    return out


def athena_results(deployed: DeployedStack, bindings: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """Athena workgroups and the results location each enforces (as moto's buckets are named)."""
    out = {}
    for resource in deployed.resources.values():
        if resource["Type"] == "AWS::Athena::WorkGroup":
            props = resource["Properties"]
            location = props["WorkGroupConfiguration"]["ResultConfiguration"]["OutputLocation"]
            out[resolve(props["Name"], bindings)] = resolve(location, bindings)
    return out
