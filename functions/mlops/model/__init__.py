"""The model and its artifacts: spec, feature schema, training, evaluation, ONNX export and
inference, bundles, registration and the registry's admin actions.
"""
