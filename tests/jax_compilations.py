"""Counting the XLA compilations a block of code makes (JAX's monitoring events)."""

import contextlib
from collections.abc import Iterator

import jax

_EVENT = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def counting_compilations() -> Iterator[list[int]]:
    """A list of one number: the XLA compilations made inside so far."""
    count = [0]

    def listener(event: str, seconds: float, **kwargs: object) -> None:
        if event == _EVENT:
            count[0] += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield count
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
