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


def _task_options(name: str, retry: bool) -> dict[str, Any]:
    """Return the Prefect task options of a stage (retries on transient faults if it may)."""
    options: dict[str, Any] = {"name": name, "cache_policy": NONE, "persist_result": False}
    if retry:
        options |= {
            "retries": len(RETRY_DELAYS_S),
            "retry_delay_seconds": RETRY_DELAYS_S,
            "retry_condition_fn": _retry_condition,
        }
    return options


def prefect_task(name: str, fn: Callable[..., Any], *args: Any, retry: bool = False) -> Any:
    """Run the stage as a Prefect task (visible in the UI), with retries on transient faults."""
    return task(fn, **_task_options(name, retry))(*args)


class Done:
    """The finished result of a call made at once: what ``direct_submit`` returns."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def result(self) -> Any:
        """Return the value (as a future's result())."""
        return self.value


class Submitter(Protocol):
    """Starts `fn(*args)` as the task called `name`; returns a future (``result()``). An
    argument that is such a future is passed as its value, resolved where the task runs."""

    def __call__(
        self, name: str, fn: Callable[..., Any], *args: Any, retry: bool = False
    ) -> Any: ...


def direct_submit(name: str, fn: Callable[..., Any], *args: Any, retry: bool = False) -> Done:
    """Run `fn` now, in this process (as ``direct``); return its result as a Done."""
    values = [arg.value if isinstance(arg, Done) else arg for arg in args]
    return Done(direct(name, fn, *values, retry=retry))


def prefect_submit(name: str, fn: Callable[..., Any], *args: Any, retry: bool = False) -> Any:
    """Submit `fn` as a Prefect task to the flow's task runner (Dask: a worker process, where
    a future argument's value already is); return its future."""
    return task(fn, **_task_options(name, retry)).submit(*args)


def submitter_of(runner: StageRunner) -> Submitter:
    """Return the submitter that goes with a stage runner: Prefect's with Prefect's."""
    return prefect_submit if runner is prefect_task else direct_submit


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
