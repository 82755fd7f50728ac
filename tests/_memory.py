"""Peak traced memory of a call: the tracemalloc check of the "no input-sized temporary"
tests, shared by every family's tests."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any


def peak_bytes(call: Callable[[], Any]) -> int:
    """Peak bytes allocated (tracemalloc) by ``call()``, run once before outside the trace so
    that compilation and first-use caches are not counted."""
    call()
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
