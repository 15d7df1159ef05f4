"""The S3 buckets of `mlops.shared.resources`, plus the bucket their server access logs go to."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct
from mlops.cloud.logstore import FEEDBACK_PREFIX, LATE_PREFIX, PREDICTIONS_PREFIX, REPORTS_PREFIX
from mlops.model.bundle import retraining_snapshots_prefix
from mlops.shared.resources import (
    ALL_RESOURCES,
    ARTIFACT_BUCKET,
    LOG_BUCKET,
    REPORT_BUCKET,
    Resource,
    ResourceKind,
)

from infrastructure.config import StageConfig
from infrastructure.nag import acknowledge, logical_id

# Athena writes query results here, inside the report bucket, so analysts need no extra bucket.
ATHENA_RESULTS_PREFIX = "athena-results/"
# The artifact bucket is versioned: an expired or overwritten object's old version stays this long.
NONCURRENT_ARTIFACT_DAYS = 90


def _secure_bucket_props() -> dict[str, object]:
    return {
        "encryption": s3.BucketEncryption.S3_MANAGED,
        "enforce_ssl": True,
        "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
        "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    }


class Storage(Construct):
    """Every bucket resource, encrypted, SSL-only, private and access-logged."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            **_secure_bucket_props(),  # type: ignore[arg-type]
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(config.access_log_expire_days))],
        )
        self.buckets: dict[str, s3.Bucket] = {}
        for res in ALL_RESOURCES:
            if res.kind is not ResourceKind.BUCKET:
                continue
            self.buckets[res.logical_id] = s3.Bucket(
                self,
                res.logical_id,
                **_secure_bucket_props(),  # type: ignore[arg-type]
                # Model bundles are immutable per version; versioning also protects them from a bad delete.
                versioned=res is ARTIFACT_BUCKET,
                # Data outlives the stack: a teardown must never take models or logs with it.
                removal_policy=RemovalPolicy.RETAIN,
                server_access_logs_bucket=self.access_logs,
                server_access_logs_prefix=f"{res.logical_id.lower()}/",
                lifecycle_rules=self._lifecycle(res, config),
            )

    @property
    def artifacts(self) -> s3.Bucket:
        return self.buckets[ARTIFACT_BUCKET.logical_id]

    @property
    def logs(self) -> s3.Bucket:
        return self.buckets[LOG_BUCKET.logical_id]

    @property
    def reports(self) -> s3.Bucket:
        return self.buckets[REPORT_BUCKET.logical_id]

    @staticmethod
    def _lifecycle(res: Resource, config: StageConfig) -> list[s3.LifecycleRule]:
        abort = s3.LifecycleRule(abort_incomplete_multipart_upload_after=Duration.days(7))
        if res is LOG_BUCKET:
            # Expiry only. A log object holds one hour of one batch (a few KB of gzip JSON Lines);
            # S3 does not move objects under 128 KB to Standard-IA, and would bill 128 KB each there.
            return [
                abort,
                *(
                    s3.LifecycleRule(
                        prefix=prefix, expiration=Duration.days(config.prediction_log_expire_days)
                    )
                    for prefix in (PREDICTIONS_PREFIX, FEEDBACK_PREFIX, LATE_PREFIX)
                ),
            ]
        if res is REPORT_BUCKET:
            return [
                abort,
                s3.LifecycleRule(prefix=REPORTS_PREFIX, expiration=Duration.days(config.report_expire_days)),
                s3.LifecycleRule(prefix=ATHENA_RESULTS_PREFIX, expiration=Duration.days(30)),
            ]
        # Artifacts: current versions stay (the registry points at them); replaced ones age out.
        # Retraining snapshots (original plus production rows) expire; original data sets never
        # do, since every retraining run starts from its model's original data.
        return [
            abort,
            s3.LifecycleRule(noncurrent_version_expiration=Duration.days(NONCURRENT_ARTIFACT_DAYS)),
            s3.LifecycleRule(
                prefix=retraining_snapshots_prefix(config.model_name),
                expiration=Duration.days(config.retraining_snapshot_expire_days),
            ),
        ]


def grant_objects(
    bucket: s3.IBucket,
    principal: iam.Role,
    prefixes: tuple[str, ...],
    *,
    read: bool = False,
    write: bool = False,
    reads_missing_keys: bool = False,
) -> None:
    """Object access under the key prefixes the function's code uses, with only the actions it calls.

    Narrower than `Bucket.grant_read`/`grant_put`, which add wildcards (`s3:GetObject*`,
    `s3:Abort*`) for versioning and multipart features the functions never use. Listing is
    allowed under the same prefixes. S3 answers a read of a missing key with 404 only to a
    caller that may list the bucket, and that check carries no `s3:prefix`: code that reads keys
    which may not exist yet (`reads_missing_keys`) may list the whole bucket's key names instead.
    The IAM tier (tests/iam) runs each function's code against these grants.
    """
    if not all(prefixes):
        raise ValueError("grant a key prefix, never a whole bucket")
    objects = [bucket.arn_for_objects(f"{prefix}*") for prefix in prefixes]
    bucket_ref = logical_id(bucket)
    verbs = " and ".join(v for v, on in (("reads", read), ("writes", write)) if on)
    for prefix in prefixes:
        acknowledge(
            principal,
            f"IAM5[Resource::<{bucket_ref}.Arn>/{prefix}*]",
            f"S3 object ARNs name keys by pattern: the wildcard covers only the keys under '{prefix}', "
            f"which this function's code {verbs}, with only the object actions it calls.",
        )
    if read:
        principal.add_to_principal_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=objects))
        listing = iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn])
        if not reads_missing_keys:
            listing.add_condition("StringLike", {"s3:prefix": [f"{prefix}*" for prefix in prefixes]})
        principal.add_to_principal_policy(listing)
    if write:
        principal.add_to_principal_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=objects))
