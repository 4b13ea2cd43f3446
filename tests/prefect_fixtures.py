"""One real Prefect server for the whole test session (`prefect_test_harness`), as a plugin.

Test modules load it with `pytest_plugins = ["prefect_fixtures"]`, so the session fixture is
defined once and the server (10-20 s to start) is shared by every module that asks for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory) -> Iterator[str]:
    """Yield the API URL of a temporary Prefect server that flows in this process report to."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


def flow_run_artifacts(flow_run_id: str | UUID) -> list:
    """Return the artifacts the Prefect server holds for one flow run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(str(flow_run_id))])
            )
        )


def flow_run_logs(flow_run_id: str | UUID) -> list[str]:
    """Return the messages the Prefect server holds for one flow run's logs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(str(flow_run_id))]))
        )
    return [entry.message for entry in logs]


def flow_run_parameters(flow_run_id: str | UUID) -> dict:
    """Return the parameters the server recorded for one flow run."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return dict(client.read_flow_run(UUID(str(flow_run_id))).parameters)


def flow_run_task_names(flow_run_id: str | UUID) -> list[str]:
    """Return the names of the task runs the server holds for one flow run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(str(flow_run_id))]))
        )
    return [run.name for run in runs]
