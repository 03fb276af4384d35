"""Counts XLA compilations, through jax's own monitoring events (shared by test_inject and test_sweep)."""

from __future__ import annotations

import contextlib

import jax

BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def count_compiles():
    """Yields a list that gets one entry per backend (XLA) compilation inside the block."""
    seen: list[str] = []

    def listener(event, duration_secs, **kwargs):
        if event == BACKEND_COMPILE:
            seen.append(kwargs.get("fun_name", "?"))

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
