"""Pausing CPython's cyclic garbage collector around bulk allocations."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused(when: bool = True) -> Iterator[None]:
    """Pause the cyclic GC while a block allocates many objects that all stay alive.

    Copying out or loading thousands of documents allocates containers that the collector would
    rescan over and over, along with every other live object (more than half the time in a large
    process). Nothing becomes garbage meanwhile, so pausing loses nothing. The collector is
    resumed only if it was running, so a caller's own ``gc.disable()`` is respected.

    Args:
        when: Pause only if true (lets callers decide by the size of the work).
    """
    pause = when and gc.isenabled()
    if pause:
        gc.disable()
    try:
        yield
    finally:
        if pause:
            gc.enable()
