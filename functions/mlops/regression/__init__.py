"""Regression models: what differs from binary classification, one small module per concern.

The shared machinery (spec, pipeline preprocessing, ONNX export, registry, serving, logs)
dispatches on `ModelSpec.task` into these modules rather than branching throughout.
"""
