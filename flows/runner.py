"""How a stage runs: directly (tests, scripts) or as a Prefect task (inside a flow)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from prefect import task
from prefect.cache_policies import NONE
from prefect.logging.handlers import APILogHandler

from flows.storage.errors import StorageError

RETRY_DELAYS_S = [2, 10, 30]


class StageRunner(Protocol):
    """Calls `fn(*args)` as the stage called `name`, retrying transient faults if it may."""

    def __call__(
        self, name: str, fn: Callable[..., Any], *args: Any, retry: bool = False
    ) -> Any: ...


def is_transient(exc: BaseException) -> bool:
    """Return True for a database fault worth retrying (dropped connection, restart)."""
    return isinstance(exc, StorageError) and exc.transient


def direct(name: str, fn: Callable[..., Any], *args: Any, retry: bool = False) -> Any:
    """Run the stage in-process, without Prefect, retrying transient faults with backoff."""
    delays = RETRY_DELAYS_S if retry else []
    for delay in [*delays, None]:
        try:
            return fn(*args)
        except Exception as exc:
            if delay is None or not is_transient(exc):
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")


def _retry_condition(task, task_run, state) -> bool:
    """Return True when the failed task's exception is transient (Prefect retry hook)."""
    try:
        state.result()
    except Exception as exc:
        return is_transient(exc)
    return False


def prefect_task(name: str, fn: Callable[..., Any], *args: Any, retry: bool = False) -> Any:
    """Run the stage as a Prefect task (visible in the UI), with retries on transient faults."""
    options: dict[str, Any] = {"name": name, "cache_policy": NONE, "persist_result": False}
    if retry:
        options |= {
            "retries": len(RETRY_DELAYS_S),
            "retry_delay_seconds": RETRY_DELAYS_S,
            "retry_condition_fn": _retry_condition,
        }
    return task(fn, **options)(*args)


@contextmanager
def logs_to_prefect(name: str = "rotation") -> Iterator[None]:
    """Send logger `name` (each stage's line with its rows and seconds, warnings, errors) to
    the current flow run's logs, at INFO, for as long as the block runs."""
    logger = logging.getLogger(name)
    if any(isinstance(h, APILogHandler) for h in logger.handlers):  # PREFECT_LOGGING_EXTRA_LOGGERS
        yield
        return
    handler, level = APILogHandler(level=logging.INFO), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
