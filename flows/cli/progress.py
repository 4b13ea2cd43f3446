"""The progress of a command, on stderr: one status line redrawn in a terminal (a line per
step elsewhere), always ended before anything else is printed."""

from __future__ import annotations

import logging
import sys

PROGRESS_LOG = "rotation.progress"  # flows/tracking.py writes the runs' steps there
WIDTH = 72


class ProgressLine(logging.Handler):
    """Draws the `rotation.progress` log as one status line on stderr."""

    def __init__(self) -> None:
        super().__init__()
        self.open = False  # a redrawn line is on screen, its newline not written yet

    def emit(self, record: logging.LogRecord) -> None:
        """Draw the step: over the status line in a terminal, on a line of its own elsewhere."""
        line = f"[{getattr(record, 'percent', 0.0):5.1f}%] {record.getMessage()}"
        if sys.stderr.isatty():
            sys.stderr.write(f"\r{line:<{WIDTH}}")
            self.open = True
            if getattr(record, "percent", 0.0) >= 100:  # the last step: its line stays
                self.end_line()
        else:
            sys.stderr.write(f"{line}\n")
        sys.stderr.flush()

    def end_line(self) -> None:
        """End the status line, so that what is printed next starts on a line of its own."""
        if self.open:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.open = False


#: Prefect's own reports of a failed task or flow run (with tracebacks).
RUN_FAILURE_LOGGERS = ("prefect.task_runs", "prefect.flow_runs")


def reported_by_the_command(record: logging.LogRecord) -> bool:
    """Return True for the log of a run's failure: Prefect's reports of the failed task and
    flow run, and the run's own (flows/tracking.py, stage "run"). The command prints that
    error itself, as its one line (flows/cli/main.py); the job row and Prefect keep them."""
    if record.levelno < logging.ERROR:
        return False
    return record.name in RUN_FAILURE_LOGGERS or getattr(record, "stage", None) == "run"


class LogLine(logging.StreamHandler):
    """The command's log on stderr: a log line starts below the progress line, never on it."""

    def emit(self, record: logging.LogRecord) -> None:
        """End the status line, then write the record (unless the command reports it)."""
        if reported_by_the_command(record):
            return
        end_progress()
        super().emit(record)


def show_progress(quiet: bool) -> None:
    """Attach the progress line to the `rotation.progress` log unless quiet."""
    logger = logging.getLogger(PROGRESS_LOG)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        if isinstance(handler, ProgressLine):
            logger.removeHandler(handler)
    if not quiet:
        logger.addHandler(ProgressLine())


def end_progress() -> None:
    """End the status line, if one is drawn."""
    for handler in logging.getLogger(PROGRESS_LOG).handlers:
        if isinstance(handler, ProgressLine):
            handler.end_line()


def announce(message: str) -> None:
    """Show the first step of a command (before its modules are even loaded)."""
    logging.getLogger(PROGRESS_LOG).info("%s", message, extra={"percent": 0.0})
