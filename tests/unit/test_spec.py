"""The model spec: valid files load, invalid ones fail with the key and the problem named."""

from __future__ import annotations

import pytest
from mlops.errors import SpecError
from mlops.spec import EstimatorKind, FeatureKind, load_spec, parse_spec

MINIMAL = {
    "name": "m",
    "target": "y",
    "features": [{"name": "a", "kind": "numeric"}, {"name": "b", "kind": "categorical"}],
}


def test_demo_spec_loads_with_defaults(churn_spec):
    assert churn_spec.name == "churn"
    assert churn_spec.estimator.kind is EstimatorKind.LOGISTIC_REGRESSION
    assert set(churn_spec.sensitive_attributes) <= set(churn_spec.feature_names)
    assert churn_spec.feature("contract").kind is FeatureKind.CATEGORICAL
    assert churn_spec.training_data is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"features": [{"name": "a", "kind": "text"}]}, "features.0.kind"),
        (
            {"features": [{"name": "a", "kind": "numeric", "min": 5, "max": 1}]},
            "min (5.0) is greater than max",
        ),
        (
            {"features": [{"name": "a", "kind": "numeric", "categories": ["x"]}]},
            "only allowed on categorical",
        ),
        ({"sensitive_attributes": ["zzz"]}, "sensitive_attributes not among features: zzz"),
        ({"target": "a"}, "target 'a' is also listed as a feature"),
        ({"features": []}, "features: List should have at least 1 item"),
        ({"split": {"test_size": 0.99}}, "split.test_size"),
        ({"unknown_key": 1}, "unknown_key: Extra inputs are not permitted"),
        ({"monitoring": {"psi_warning": 0.3, "psi_drift": 0.2}}, "psi_warning must be below psi_drift"),
        (
            {"features": [{"name": "a", "kind": "numeric"}, {"name": "a", "kind": "numeric"}]},
            "duplicate feature",
        ),
    ],
)
def test_invalid_specs_name_the_key_and_problem(change, expected):
    with pytest.raises(SpecError) as err:
        parse_spec({**MINIMAL, **change}, source="spec.toml")
    assert expected in str(err.value)
    assert str(err.value).startswith("spec.toml: ")


def test_missing_and_malformed_files_give_one_line_errors(tmp_path):
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(SpecError, match="not valid toml"):
        load_spec(bad)
