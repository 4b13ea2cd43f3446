"""The item models, fitted once where the shards' fit inputs are gathered: on a worker of a
sharded run (the run's own process in a one-shard run), never on the run's process.

The shards send their coded fit inputs to one task (``gathered_fit_inputs``); the holdout's
evaluation and the item models' fit (``item_models``) run where it is, and keep there what
they produce: the item side the shards' lists read (shared from there with every worker),
content_similarity's record and store parts, checked against the catalogue, and the
popularity rows. The run's process gets the fit's summary, the holdout's figures and the
popularity rows; the neighbours' parts reach it one at a time, at the publish.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from flows.params import NightlyParams
from flows.stages import evaluation, recommendations, similarity, tuning
from flows.stages.extract import Inputs
from flows.stages.held_rows import NEIGHBOURS, HeldRows, checked_rows
from flows.stages.model_inputs import FitInputs, combined_fit_inputs
from flows.tracking import release_free_memory
from models.kernels.parallel import blas_on_every_core
from transforms.sizes import frames_size


def gathered_fit_inputs(*parts: FitInputs) -> FitInputs:
    """Return the shards' fit inputs (home first, then by user range) as one run's."""
    return combined_fit_inputs(list(parts))


def fit_fingerprint(fit: FitInputs) -> dict:
    """Return the fingerprint of the positive user×record matrix (small: for the run's
    choice of the record model's parameters)."""
    return tuning.fingerprint(fit.records)


def holdout_figures(fit: FitInputs, catalogue: Inputs, model_params: dict | None) -> dict:
    """Return the holdout's quality figures of the record model fitted on its train pairs."""
    with blas_on_every_core():
        figures = evaluation.holdout_quality(
            fit.train, fit.test, catalogue.records, 10, evaluation.MAX_HOLDOUT_USERS, model_params
        )
    release_free_memory()  # the holdout model's fit, freed where the item models run next
    return figures


@dataclass(frozen=True)
class ItemModels:
    """What the item models' task keeps where it ran: the item side of the shards' lists,
    content_similarity's record and store parts (checked), and the popularity rows."""

    side: recommendations.ItemSide
    neighbours: tuple[HeldRows, ...]
    popular: pl.DataFrame

    def __sizeof__(self) -> int:
        return self.side.__sizeof__() + frames_size((self.neighbours, self.popular))


def item_models(
    catalogue: Inputs,
    fit: FitInputs,
    params: NightlyParams,
    model_params: dict | None,
    ids: dict[str, pl.Series],
) -> ItemModels:
    """Return the item models fitted on every user's pairs (the holdout's left out), their
    neighbours checked against the catalogue's `ids`, and the popularity rows."""
    fit = fit.without_holdout()
    with blas_on_every_core():
        sim = similarity.compute_similarity(catalogue, fit, params, model_params)
    side = recommendations.item_side(catalogue, fit, sim)
    popular = recommendations.popularity_rows(catalogue, fit)
    parts = tuple(checked_rows(NEIGHBOURS, part, ids) for part in sim.parts)
    del sim  # the fitted model's user side: the shards get its item side
    release_free_memory()  # the fit's blocks, not carried into the worker's next task
    return ItemModels(side, parts, popular)


def item_side_of(models: ItemModels) -> recommendations.ItemSide:
    """Return what the shards' lists read of the item models (shared with every worker)."""
    return models.side


def neighbours_part(models: ItemModels, index: int) -> HeldRows:
    """Return content_similarity's part `index` of the item models (kept where they are)."""
    return models.neighbours[index]


def popularity_of(models: ItemModels) -> pl.DataFrame:
    """Return the popularity rows of the item models (small: sent to the run's process)."""
    return models.popular
