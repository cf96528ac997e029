"""A pause of Python's cyclic garbage collector around a whole scan cycle.

One pause per cycle, taken by whoever runs the cycle (the serve loop's scan, the
one-shot `ringwatch scan`); the builder and the renderer run inside it and take none."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic GC while a scan's objects are built: they hold no cycles
    (refcounting frees them), yet each collection would walk every one of them
    (a third of a 10k-member scan cycle). The collector resumes afterwards; left
    alone if it was already off."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
