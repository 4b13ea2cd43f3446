"""The nightly and backfill stages as plain functions (frames in, frames out); only extract
reads the database, through the storage interface."""
