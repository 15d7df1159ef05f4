"""The vocabulary every layer shares: resource definitions, settings, errors, clock,
observability, metric and alarm specs, the route table, strict JSON parsing and the report charts.
"""
