"""Seeded generators of demo data with controllable drift (churn and pricing)."""
