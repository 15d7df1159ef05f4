"""Notifications to people: one SNS topic for alarms, approvals and retraining outcomes."""

from __future__ import annotations

import json
from typing import Any

from mlops.cloud.storage import aws_call


def notify(sns: Any, topic_arn: str | None, subject: str, message: dict[str, Any]) -> str | None:
    """Publish `message` as JSON; returns the message id (None where no topic is configured)."""
    if not topic_arn:
        return None
    with aws_call(f"publish to {topic_arn}"):
        out = sns.publish(
            TopicArn=topic_arn, Subject=subject[:100], Message=json.dumps(message, indent=2, default=str)
        )
    return str(out["MessageId"])
