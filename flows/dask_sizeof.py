"""Dask's size of what the shard tasks hand back through Prefect (a `dask.sizeof` entry point).

prefect-dask gives Dask each task's Prefect State, not its value: a worker would count a
shard's rows held in a State as the few bytes of the State, never spill them to disk and run
past its memory limit instead (a 90-day backfill at L restarted its 2 GiB workers so). Dask
loads this registration in every process that imports it where the package is installed
(pyproject.toml's entry point), the workers' included; Prefect and polars are imported only
once one of theirs is sized.
"""

from __future__ import annotations


def register(sizeof) -> None:
    """Register with Dask's `sizeof` the size of a Prefect State (that of its result) and
    of a polars frame (its buffers': Dask knows pandas', not polars')."""

    @sizeof.register_lazy("polars")
    def _register_frame() -> None:
        import polars as pl  # lazy: as below

        @sizeof.register(pl.DataFrame)
        def _frame_size(frame: pl.DataFrame) -> int:
            return int(frame.estimated_size())

    @sizeof.register_lazy("prefect")
    def _register_state() -> None:
        from prefect.client.schemas.objects import State  # lazy: Dask imports this module

        @sizeof.register(State)
        def _state_size(state: State) -> int:
            held = getattr(state.data, "result", state.data)  # a ResultRecord holds the value
            return int(sizeof(held))
