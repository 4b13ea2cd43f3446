-- A nightly run whose lists must not replace the published ones (a window without events,
-- far fewer users than the last published run's, a quality that cannot be measured when
-- the last run's could: flows/stages/publish.py) ends `skipped`, not `completed`.
ALTER TYPE job_status ADD VALUE IF NOT EXISTS 'skipped';
