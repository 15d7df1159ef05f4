"""cdk-nag AwsSolutions passes with only reasoned acknowledgements, and cfn-lint finds no errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs, lint

from tests.infrastructure.synth_support import Synthesised

# Acknowledgements are few and named: a new kind of finding must be looked at, not waved through.
ACCEPTED_RULES = {"AwsSolutions-IAM5", "AwsSolutions-L1", "AwsSolutions-SQS3"}


def test_cdk_nag_reports_no_open_findings(synth: Synthesised) -> None:
    reports = {r["pluginName"]: r for r in synth.validation_report["pluginReports"]}
    nag = reports["AwsSolutions"]
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []


def test_every_acknowledgement_names_its_rule_and_gives_a_reason(synth: Synthesised) -> None:
    acknowledged = synth.validation_report["pluginReports"][0]["suppressedViolations"]
    assert acknowledged, "the stack has known, accepted findings; an empty list means nag did not run"
    for item in acknowledged:
        assert item["ruleName"].split("[")[0] in ACCEPTED_RULES, item["ruleName"]
        assert len(item["reason"].split()) >= 8, f"{item['ruleName']}: reason too thin: {item['reason']!r}"


def test_cdk_nag_would_fail_an_insecure_bucket(tmp_path: Path) -> None:
    """Control: the same plugin set-up rejects a bucket without SSL enforcement or access logs."""
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Insecure")
    s3.Bucket(stack, "Open")
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(RuntimeError, match="ValidationFailed") as failure:
        app.synth()
    assert "AwsSolutions-S10" in str(failure.value) and "AwsSolutions-S1'" in str(failure.value)


def test_cfn_lint_finds_no_errors(synth: Synthesised) -> None:
    matches = lint(synth.template_path.read_text(), config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    errors = [
        f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})"
        for m in matches
        if m.rule.id.startswith("E")
    ]
    assert errors == []
