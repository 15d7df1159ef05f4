"""Retraining: assemble data, train a candidate with the one training function, gate it, promote it."""
