"""The kinds a model spec names (task, feature kinds, estimators, metrics), apart from the spec itself.

The serving functions need these and not the spec's pydantic models, whose construction at import
is cold start that no request uses; `mlops.model.spec` imports them from here.
"""

from __future__ import annotations

from enum import StrEnum


class Task(StrEnum):
    BINARY_CLASSIFICATION = "binary_classification"
    REGRESSION = "regression"


class FeatureKind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    # Served and stored as the categories "false"/"true" (see mlops.model.canonical).
    BOOLEAN = "boolean"


class EstimatorKind(StrEnum):
    LOGISTIC_REGRESSION = "logistic_regression"
    GRADIENT_BOOSTING = "gradient_boosting"
    RANDOM_FOREST = "random_forest"
    # Regression only; random forest and gradient boosting serve both tasks.
    LINEAR_REGRESSION = "linear_regression"
    RIDGE = "ridge"


class PrimaryMetric(StrEnum):
    ROC_AUC = "roc_auc"
    ACCURACY = "accuracy"
    F1 = "f1"
    PRECISION = "precision"
    RECALL = "recall"
    AVERAGE_PRECISION = "average_precision"
    # Regression: errors in the target's units (lower is better) and R² (higher is better).
    RMSE = "rmse"
    MAE = "mae"
    R2 = "r2"
