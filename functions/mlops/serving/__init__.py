"""The serving domain: request validation, the champion cache, prediction, logging and feedback.

Knows nothing of Lambda event shapes; the handlers in `mlops.handlers` adapt events to it.
Imports neither sklearn, scipy nor pandas: it is what the predict function ships.
"""
