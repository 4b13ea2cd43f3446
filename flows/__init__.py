"""The Prefect flows (nightly, backfill), their stages, run tracking and artifacts, and the run
parameters (params.py, one definition of each). Flows hold no business logic a test cannot
call without Prefect: that lives in transforms/ and models/, reached through stages/."""
