"""Helpers for the hidden ``run-with`` setups of the docs' code blocks.

``tests/test_docs_blocks.py`` puts this folder on the path of the process that runs a
page's blocks; a setup imports what it needs (``from docs_setup import digits``). They
stand in for the reader's data and servers, small and local; the blocks themselves run
the real code.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import numpy as np


def digits(n: int, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows of scikit-learn's digits from row ``start``: pixels in [0, 1] (float32), labels."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X[start : start + n] / 16).astype("float32"), y[start : start + n]


def regression(n: int, features: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows of a small linear regression task with ``features`` inputs (float32)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, features)).astype("float32")
    return X, (X @ rng.normal(size=features) / np.sqrt(features)).astype("float32")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def in_background(function: Callable[..., Any], *args: Any, **kwargs: Any) -> threading.Thread:
    """``function(*args, **kwargs)`` in a daemon thread: a server the reader starts elsewhere."""
    thread = threading.Thread(target=function, args=args, kwargs=kwargs, daemon=True)
    thread.start()
    return thread


def ctrl_c_when_served(url: str, timeout: float = 60.0) -> None:
    """Press Ctrl-C (SIGINT to this process) once ``url`` answers, as the reader would.

    For a block that serves until interrupted (``serve_dashboard``): the block's call
    returns only if it served ``url`` and stopped cleanly on Ctrl-C. After ``timeout``
    seconds without an answer the process exits with status 3: the page's test fails
    instead of hanging.
    """

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        else:
            print(f"ctrl_c_when_served: {url} did not answer in {timeout} s", flush=True)
            os._exit(3)
        os.kill(os.getpid(), signal.SIGINT)

    in_background(watch)


def wait_for_grpc(port: int, timeout: float = 30.0) -> None:
    """Wait until a gRPC server listens on 127.0.0.1:``port``."""
    import grpc

    grpc.channel_ready_future(grpc.insecure_channel(f"127.0.0.1:{port}")).result(timeout=timeout)
