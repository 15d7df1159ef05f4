"""Monitoring: drift, production performance, label-free estimates and fairness of served models.

Statistics work on mergeable counts (`mlops.monitoring.profile`), never on a window's raw rows;
`mlops.monitoring.run.run_monitor` is the one entry point for handler, CLI and retraining.
"""
