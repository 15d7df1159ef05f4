"""The cyclic garbage collector held off while a Lambda serving container starts.

Importing the predict handler and answering its first request create about a hundred thousand
objects that live as long as the container: modules, the SDK's service models and endpoint
rules, the model's session. With the collector on, each burst of allocations sets off a
collection, and the oldest generation's walk everything made so far again. Importing this module
first (in a Lambda runtime only: `AWS_EXECUTION_ENV`) turns the collector off; `resume`, called
once the first answer is made, moves what exists then to the permanent generation (`gc.freeze`,
never walked again) and turns it back on. Objects freed by reference counting, nearly all of
them, are freed meanwhile as ever; only cycles wait for `resume`.
"""

from __future__ import annotations

import gc
import os

_paused = os.environ.get("AWS_EXECUTION_ENV", "").startswith("AWS_Lambda_") and gc.isenabled()
if _paused:
    gc.disable()


def resume() -> None:
    """Turn the collector back on after the first answer (a no-op from then on, and outside Lambda)."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
