"""AWS access: clients, provisioning, and the stores on them (registry, logs, notifications).
The only code that calls boto3; clients are always passed in.
"""
