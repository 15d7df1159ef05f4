"""Run function code as its deployed role: every boto3 call it makes is authorized first.

The functions build their clients through `mlops.cloud.aws`; the enforcer installs a boto3 session there
whose `before-parameter-build` hook authorizes each call against the statements of the role the
test is acting as. A refused call raises the AccessDenied error AWS would return (so the code's
own error handling runs) and is recorded, and leaving `acting_as` fails the test with every
refused action and resource, even when the code caught the error and carried on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from mlops.cloud import aws

from tests.iam.deployed import DeployedStack, athena_results, moto_bindings, resolve, topic_keys
from tests.iam.policy import (
    ACCOUNT,
    QUERY_WORKGROUPS,
    REGION,
    AuthRequest,
    UnmappedCall,
    authorizations,
    is_allowed,
    missing_key_listing,
)

# The error code each service answers a refused call with.
DENIED_CODE = {
    "s3": "AccessDenied",
    "dynamodb": "AccessDeniedException",
    "sns": "AuthorizationError",
    "lambda": "AccessDeniedException",
}


@dataclass(frozen=True)
class Denial:
    role: str
    call: str
    request: AuthRequest

    def __str__(self) -> str:
        return f"{self.role} may not {self.request.describe()} (called {self.call})"


class IamEnforcer:
    def __init__(self, deployed: DeployedStack, env: Mapping[str, str]) -> None:
        bindings = moto_bindings(deployed, env)
        self.statements = {
            key: [resolve(s, bindings) for s in deployed.role_statements(key)] for key in deployed.roles
        }
        self.role_ids = dict(deployed.roles)
        self.topic_keys = topic_keys(deployed, bindings)
        self.athena_results = athena_results(deployed, bindings)
        self.active: str | None = None
        self.denials: list[Denial] = []
        self.unmapped: list[str] = []
        self._s3: Any = None
        # The functions' clients come from one botocore session (mlops.cloud.aws): hook that one.
        self.session = botocore.session.get_session()
        self.session.register("before-parameter-build", self._authorize)
        self.session.register("after-call.athena.StartQueryExecution", self._record_query)

    def principal(self, key: str) -> str:
        return f"arn:aws:sts::{ACCOUNT}:assumed-role/{self.role_ids[key]}/{key}"

    def allows(self, key: str, request: AuthRequest) -> bool:
        return is_allowed(self.statements[key], request)

    def _authorize(self, params: dict[str, Any], model: Any, **kwargs: Any) -> None:
        if self.active is None:
            return  # test set-up, not function code
        service = model.service_model.service_name
        call = f"{service}.{model.name}"
        if call == "athena.StartQueryExecution" and isinstance(kwargs.get("context"), dict):
            kwargs["context"]["athena_workgroup"] = params.get("WorkGroup", "primary")
        try:
            requests = authorizations(service, model.name, params, self.topic_keys, self.athena_results)
        except UnmappedCall as err:
            self.unmapped.append(str(err))
            raise
        for request in requests:
            if not self.allows(self.active, request):
                self.denials.append(Denial(self.active, call, request))
                message = (
                    f"User: {self.principal(self.active)} is not authorized to perform: {request.action} "
                    f"on resource: {request.resource} because no identity-based policy allows the "
                    f"{request.action} action"
                )
                raise ClientError(
                    {
                        "Error": {"Code": DENIED_CODE.get(service, "AccessDenied"), "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": 403},
                    },
                    model.name,
                )
        missing = self._missing_key(service, model.name, params)
        if missing is not None and not self.allows(self.active, missing):
            # S3 answers a read of a missing key with 403 unless the caller may list the bucket.
            self.denials.append(Denial(self.active, f"{call} of a missing key", missing))
            code = "403" if model.name == "HeadObject" else "AccessDenied"
            raise ClientError(
                {
                    "Error": {"Code": code, "Message": "Access Denied"},
                    "ResponseMetadata": {"HTTPStatusCode": 403},
                },
                model.name,
            )

    @staticmethod
    def _record_query(http_response: Any, parsed: dict[str, Any], model: Any, **kwargs: Any) -> None:
        request = kwargs.get("context", {}).get("athena_workgroup")
        if "QueryExecutionId" in parsed and request:
            QUERY_WORKGROUPS[parsed["QueryExecutionId"]] = request

    def _missing_key(self, service: str, operation: str, params: dict[str, Any]) -> AuthRequest | None:
        if service != "s3" or operation not in ("GetObject", "HeadObject"):
            return None
        if self._s3 is None:
            self._s3 = boto3.client("s3", region_name=REGION)  # not hooked: a look, not the function's call
        try:
            self._s3.head_object(Bucket=params["Bucket"], Key=params["Key"])
            return None
        except ClientError:
            return missing_key_listing(params["Bucket"])

    @contextmanager
    def acting_as(self, function_key: str, *, expect_denied: bool = False) -> Iterator[list[Denial]]:
        """Calls inside are made as the function's role; refused ones fail the test on exit."""
        assert function_key in self.statements, f"no role for {function_key}"
        self.active, self.denials, self.unmapped = function_key, [], []
        denials = self.denials
        try:
            yield denials
        except Exception:
            self._report(denials, expect_denied)  # the refusal, not what the code made of it
            raise
        finally:
            self.active = None
        self._report(denials, expect_denied)

    def _report(self, denials: list[Denial], expect_denied: bool) -> None:
        if self.unmapped:
            pytest.fail("calls without an IAM mapping in tests/iam/policy.py: " + ", ".join(self.unmapped))
        if denials and not expect_denied:
            pytest.fail("refused by the deployed role:\n" + "\n".join(f"  {d}" for d in denials))


def install(enforcer: IamEnforcer) -> None:
    aws.use_session(enforcer.session)
