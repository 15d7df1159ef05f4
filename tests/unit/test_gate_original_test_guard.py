"""The gate's original-test guard measures the world's change with the model of the old world."""

from __future__ import annotations

import numpy as np
import pandas as pd
from mlops.datagen.churn import generate_churn
from mlops.model.registration import prove_export
from mlops.model.training import feature_frame, frame_rows, train_model
from mlops.retraining.gate import LabelledRows, run_gate
from sklearn import metrics as skm


def labelled(spec, frame: pd.DataFrame) -> LabelledRows:
    return LabelledRows(frame_rows(frame[spec.feature_names]), frame[spec.target].astype(int).to_numpy())


def test_a_champion_refit_on_part_of_the_new_world_does_not_veto_a_model_of_the_new_world(churn_spec):
    # Given v1 of the old world, a champion refit on a blend of old and new rows, and a candidate of
    # the new world, after a full shift of inputs and of what makes customers leave
    old = generate_churn(4000, seed=11)
    new = generate_churn(4000, seed=12, covariate_shift=1.0, concept_shift=1.0)
    original_test = generate_churn(1500, seed=13)
    holdout = generate_churn(400, seed=14, covariate_shift=1.0, concept_shift=1.0)
    first = train_model(old, churn_spec)
    blend = pd.concat([old, new.iloc[:400]], ignore_index=True)
    weights = np.r_[np.full(len(old), 1.0), np.full(400, 5.0)]
    champion = train_model(blend, churn_spec, sample_weight=weights)
    candidate = train_model(new, churn_spec)
    exported = {name: prove_export(r) for name, r in (("first", first), ("champion", champion))}
    candidate_onnx, parity = prove_export(candidate)

    def gate(with_first: bool):
        return run_gate(
            churn_spec,
            candidate_onnx=candidate_onnx,
            candidate_schema=candidate.schema,
            parity=parity,
            champion_onnx=exported["champion"][0],
            champion_schema=champion.schema,
            original_test=labelled(churn_spec, original_test),
            production_holdout=labelled(churn_spec, holdout),
            training_rows=len(new),
            production_labels=len(new),
            performance_trigger=True,
            root_onnx=exported["first"][0] if with_first else None,
            root_schema=first.schema if with_first else None,
        )

    def auc(model, frame):
        return skm.roc_auc_score(
            frame[churn_spec.target].astype(int),
            model.pipeline.predict_proba(feature_frame(frame, churn_spec))[:, 1],
        )

    # The setting is what the guard is for: the candidate is far better on recent traffic, pays for it on
    # the old test set, and the champion shows only part of the world's change (checked with sklearn)
    assert auc(candidate, holdout) > auc(champion, holdout) + 0.05
    champion_change = auc(champion, original_test) - auc(champion, holdout)
    first_change = auc(first, original_test) - auc(first, holdout)
    assert first_change > champion_change + 0.05
    drop = auc(champion, original_test) - auc(candidate, original_test)
    margin = churn_spec.retraining.max_original_test_drop
    assert champion_change + margin < drop <= first_change + margin

    # When the gate judges the candidate with and without the lineage's first version
    without = {c.name: c for c in gate(with_first=False).checks}["original_test_guard"]
    with_first = {c.name: c for c in gate(with_first=True).checks}["original_test_guard"]

    # Then held to the champion's partial change it is vetoed; measured by the old world's model it passes
    assert without.passed is False
    assert with_first.passed is True
    figures = with_first.figures
    assert abs(figures["first_version_change"] - first_change) < 1e-6
    assert abs(figures["allowed"] - (max(champion_change, first_change) + margin)) < 1e-6
