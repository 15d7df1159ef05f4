"""The CDK app of serverless-mlops: one stack per stage, built from one construct per concern."""
