"""serverless-mlops: serve, log, monitor, retrain and govern scikit-learn models on AWS serverless."""

__version__ = "0.1.0"
