"""A DynamoDB client for races: every call is atomic, and racers all read before any writes.

moto's in-process backend is not thread-safe, so threads racing against it test moto. This
wrapper makes each call atomic (as each DynamoDB request is) and holds every racing thread's
first write until all of them have got there: every racer has done its reads, which is the
interleaving a read-check-write race needs. Code that is only safe by luck fails under it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

WRITES = frozenset({"put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"})


class RacingStore:
    def __init__(self, client: Any, racers: int, timeout: float = 30.0) -> None:
        self._client = client
        self._call = threading.Lock()
        self._all_read = threading.Barrier(racers, timeout=timeout)
        self._wrote: set[int] = set()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            me = threading.get_ident()
            if name in WRITES and me not in self._wrote:
                self._wrote.add(me)
                self._all_read.wait()
            with self._call:
                return method(*args, **kwargs)

        return call


def race(racers: list[Callable[[], Any]]) -> list[Any]:
    """Run each callable in its own thread; each result or the exception it raised, in order."""
    results: list[Any] = [None] * len(racers)

    def run(i: int) -> None:
        try:
            results[i] = racers[i]()
        except Exception as err:
            results[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(racers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results
