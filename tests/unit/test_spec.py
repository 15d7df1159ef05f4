"""The model spec: valid files load, invalid ones fail with the key and the problem named."""

from __future__ import annotations

import pytest
from mlops.model.spec import EstimatorKind, FeatureKind, load_spec, parse_spec
from mlops.shared.errors import SpecError

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
        ({"features": [{"name": "a", "kind": "text"}]}, "feature 'a' kind: Input should be 'numeric'"),
        ({"features": [{"kind": "numeric"}]}, "features[0] name: required"),
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
        ({"unknown_key": 1}, "unknown_key: unknown key"),
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


def test_column_names_are_kept_as_given():
    # given names with spaces and punctuation, as CSV headers often have them
    spec = parse_spec(
        {
            "name": "m",
            "target": "Diagnosis (final)",
            "id_column": "patient id",
            "features": [
                {"name": "Age (years)", "kind": "numeric"},
                {"name": "plan/tier #", "kind": "categorical"},
            ],
        }
    )

    assert spec.feature_names == ["Age (years)", "plan/tier #"]
    assert (spec.target, spec.id_column) == ("Diagnosis (final)", "patient id")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("âge", "'â'"),
        ("   ", "at least one visible character"),
        ("a\tb", "'\\t'"),
        ("x" * 129, "longer than 128"),
    ],
)
def test_an_unusable_column_name_is_named_once_without_a_pattern(name, problem):
    features = [{"name": name, "kind": "numeric"}] + [{"name": f"f{i}", "kind": "numeric"} for i in range(30)]

    with pytest.raises(SpecError) as err:
        parse_spec({"name": "m", "target": "y", "features": features})

    text = str(err.value)
    assert text.count(repr(name)) == 1
    assert problem in text
    assert "^" not in text and "pattern" not in text
    assert text.count(";") == 0  # one problem, said once


def test_names_that_differ_only_in_case_are_refused_naming_both():
    with pytest.raises(SpecError, match="differ only in case: 'AGE', 'Age'"):
        parse_spec(
            {**MINIMAL, "features": [{"name": "Age", "kind": "numeric"}, {"name": "AGE", "kind": "numeric"}]}
        )


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"monitoring": {"max_metric_gap": "0.05"}}, "monitoring.max_metric_gap"),
        ({"split": {"seed": 42.0}}, "split.seed"),
        ({"split": {"min_rows": "300"}}, "split.min_rows"),
        ({"retraining": {"auto_promote": "true"}}, "retraining.auto_promote"),
        ({"features": [{"name": "a", "kind": "numeric", "min": "0"}]}, "feature 'a' min"),
    ],
)
def test_types_are_strict(change, where):
    with pytest.raises(SpecError) as err:
        parse_spec({**MINIMAL, **change})
    assert where in str(err.value)


def test_strictness_still_reads_integers_as_floats_and_kinds_as_text():
    spec = parse_spec(
        {
            **MINIMAL,
            "monitoring": {"max_metric_gap": 0.05, "window_hours": 6},
            "features": [{"name": "a", "kind": "numeric", "min": 0, "max": 10}],
        }
    )
    assert spec.monitoring.max_metric_gap == 0.05
    assert spec.feature("a").min == 0.0


def test_declared_categories_are_stored_in_canonical_form():
    spec = parse_spec(
        {
            **MINIMAL,
            "features": [{"name": "b", "kind": "categorical", "categories": [21, 2.0, "3.50", True, "007"]}],
        }
    )
    assert spec.feature("b").categories == ["21", "2", "3.5", "true", "007"]


def test_boolean_features_and_positive_labels():
    spec = parse_spec(
        {**MINIMAL, "positive_label": "malignant", "features": [{"name": "smoker", "kind": "boolean"}]}
    )
    assert spec.boolean_features == ["smoker"]
    assert spec.categorical_features == ["smoker"]
    assert spec.positive_class == "malignant"
    assert parse_spec({**MINIMAL, "positive_label": 1}).positive_class == "1"
    assert parse_spec(MINIMAL).positive_class is None
    with pytest.raises(SpecError, match="feature 'smoker': 'min'/'max' are only allowed on numeric"):
        parse_spec({**MINIMAL, "features": [{"name": "smoker", "kind": "boolean", "min": 0}]})
