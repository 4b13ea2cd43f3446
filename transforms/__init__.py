"""Pure functions, polars in and polars out: validation and quarantine, daily metrics,
interactions, recommendation lists (recommend/) and synthetic data (synthetic/). No I/O, no
globals, inputs never mutated."""
