"""Data files as they come: delimiters, decimal commas, missing markers, named positive labels."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from mlops.model.spec import parse_spec
from mlops.model.training import binary_target, feature_frame, labels, load_table, target_classes
from mlops.shared.errors import DataError

SPEC = parse_spec(
    {
        "name": "m",
        "target": "y",
        "features": [{"name": "income", "kind": "numeric"}, {"name": "region", "kind": "categorical"}],
    }
)


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("delimiter", "word"), [(";", "semicolon"), ("\t", "tab"), ("|", "pipe")])
def test_a_csv_with_another_delimiter_is_read_with_it_and_says_so(tmp_path, caplog, delimiter, word):
    # given a file whose fields are not separated by commas (and one value holds a comma)
    text = delimiter.join(["income", "region", "y"]) + "\n"
    text += "".join(
        delimiter.join([str(i), "north, east" if i % 2 else "south", str(i % 2)]) + "\n" for i in range(9)
    )
    path = _write(tmp_path, "data.csv", text)

    with caplog.at_level(logging.WARNING):
        frame = load_table(path)

    assert list(frame.columns) == ["income", "region", "y"]
    assert len(frame) == 9
    assert frame.attrs["csv_delimiter"] == delimiter
    assert feature_frame(frame, SPEC)["region"].tolist()[:2] == ["south", "north, east"]
    assert any(word in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)


def test_a_comma_csv_is_read_without_a_warning(tmp_path, caplog):
    path = _write(tmp_path, "data.csv", 'income,region,y\n1.5,"a;b",0\n2,c,1\n')
    with caplog.at_level(logging.WARNING):
        frame = load_table(path)
    assert frame.attrs["csv_delimiter"] == ","
    assert frame["region"].tolist() == ["a;b", "c"]
    assert not caplog.records


def test_decimal_commas_are_named_with_what_to_do(tmp_path):
    path = _write(tmp_path, "data.csv", "income;region;y\n1,5;north;0\n2,25;south;1\n")

    with pytest.raises(DataError) as err:
        feature_frame(load_table(path), SPEC)

    text = str(err.value)
    assert "'income'" in text and "'1,5'" in text
    assert "decimal comma" in text and "'.' as the decimal separator" in text


def test_one_column_named_like_a_header_line_points_at_the_delimiter():
    # given a file read with the wrong delimiter: one column whose name is the whole header
    frame = pd.DataFrame({"income;region;y": ["1;a;0"]})
    with pytest.raises(DataError, match="delimited by ';'"):
        feature_frame(frame, SPEC)


def test_a_column_name_with_stray_spaces_is_pointed_out():
    frame = pd.DataFrame({" income": [1.0], "region": ["a"]})
    with pytest.raises(DataError, match="'income' is spelled ' income' in the data"):
        feature_frame(frame, SPEC)


def test_only_an_empty_field_is_a_missing_category_while_numbers_accept_usual_markers(tmp_path):
    path = _write(tmp_path, "data.csv", "income,region,y\nNA,NA,0\n,None,1\nn/a,,0\n3,north,1\n")

    features = feature_frame(load_table(path), SPEC)

    assert features["region"].tolist() == ["NA", "None", "", "north"]
    assert np.isnan(features["income"].to_numpy()[:3]).all()
    assert features["income"].iloc[3] == 3.0


def test_a_boolean_text_in_a_numeric_feature_suggests_the_boolean_kind():
    frame = pd.DataFrame({"income": ["True", "False"], "region": ["a", "b"]})
    with pytest.raises(DataError, match='kind = "boolean"'):
        feature_frame(frame, SPEC)


def _with_target(values: list[object], **spec_changes: object):
    spec = parse_spec({**SPEC.model_dump(mode="json", exclude_none=True), **spec_changes})
    return pd.DataFrame({"income": 1.0, "region": "a", "y": values}), spec


def test_a_string_target_without_a_positive_label_lists_its_values_and_the_fix():
    data, spec = _with_target(["benign"] * 30 + ["malignant"] * 12)

    with pytest.raises(DataError) as err:
        labels(data, spec)

    text = str(err.value)
    assert "must be 0/1" in text and "positive_label" in text
    assert "'benign' (30)" in text and "'malignant' (12)" in text


def test_a_named_positive_label_maps_a_string_target():
    values = ["malignant", "benign", "benign", "malignant", "benign"] * 10
    data, spec = _with_target(values, positive_label="malignant")

    y = labels(data, spec)

    np.testing.assert_array_equal(y, [int(v == "malignant") for v in values])
    assert target_classes(data, spec) == ("benign", "malignant")


def test_positive_labels_compare_in_canonical_form():
    # given a target that pandas read as floats and a spec that names the positive class as text
    data, spec = _with_target([1.0, 2.0] * 15, positive_label="2")
    np.testing.assert_array_equal(binary_target(data, spec), [0, 1] * 15)


def test_boolean_targets_need_no_positive_label():
    data, spec = _with_target([True, False] * 15)
    np.testing.assert_array_equal(binary_target(data, spec), [1, 0] * 15)


@pytest.mark.parametrize(
    ("values", "label", "message"),
    [
        (
            ["yes", "no"] * 15,
            "Yes",
            "positive_label 'Yes' is not a value of target 'y'; found 2 distinct: 'yes'",
        ),
        (["a", "b", "c"] * 10, "a", "must hold two values"),
    ],
)
def test_a_positive_label_that_does_not_fit_is_refused_listing_the_values(values, label, message):
    data, spec = _with_target(values, positive_label=label)
    with pytest.raises(DataError, match=message):
        labels(data, spec)


def test_retraining_writes_feedback_labels_as_the_original_target_values():
    from mlops.retraining.data import TIMESTAMP, build_training_set

    # given an original data set with a string target and production rows labelled 0/1 by feedback
    spec = parse_spec({**SPEC.model_dump(mode="json", exclude_none=True), "positive_label": "malignant"})
    rng = np.random.default_rng(3)
    original = pd.DataFrame(
        {
            "income": rng.normal(size=400),
            "region": rng.choice(["a", "b"], 400),
            "y": rng.choice(["benign", "malignant"], 400),
        }
    )
    feedback = rng.integers(0, 2, 300)
    production = pd.DataFrame(
        {
            "income": rng.normal(size=300),
            "region": "a",
            "y": feedback,
            TIMESTAMP: [f"t{i:04d}" for i in range(300)],
        }
    )

    mix = build_training_set(original, production, spec)

    # then the production rows carry the original's values, and 1 still means the positive class
    produced = mix.data["y"].iloc[len(mix.data) - 210 :]
    assert set(produced) == {"benign", "malignant"}
    np.testing.assert_array_equal((produced == "malignant").astype(int).to_numpy(), feedback[:210])
    np.testing.assert_array_equal(mix.production_holdout.labels, feedback[210:])
    np.testing.assert_array_equal(binary_target(mix.data, spec)[-210:], feedback[:210])
