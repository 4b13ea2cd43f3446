"""The similarity stage: collaborative, content and hybrid neighbours as content_similarity rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from flows.params import NightlyParams
from flows.stages.extract import Inputs
from flows.stages.interactions import genre_matrix, to_matrix
from flows.stages.model_inputs import FitInputs
from models.content import ContentSimilarity
from models.kernels.parallel import run_beside
from models.matrix import InteractionMatrix
from models.neighbors import ItemKNN, topk_neighbors
from models.recommender import RotationRecommender
from transforms.content_features import record_tokens, store_stock

#: The lookup index's order within one source type (flows/stages/publish.py's).
LOOKUP_WITHIN_TYPE = ("source_id", "similarity_type", "rank")


@dataclass(frozen=True)
class FittedModel:
    """The record recommender fitted on the run's user×record matrix (fitted once per run)."""

    matrix: InteractionMatrix
    model: RotationRecommender | None  # None when the matrix holds no pair


@dataclass(frozen=True)
class Similarity:
    """content_similarity rows, the record neighbours that explain recommendations, the model.

    The rows come in parts by source type, each in the lookup index's order (source_type,
    source_id, similarity_type, rank): in turn, they are the table in that order, without
    a copy of the whole (7.4M rows at L) made to concatenate or sort them.
    """

    parts: tuple[pl.DataFrame, ...]
    record_neighbors: pl.DataFrame  # source_id, target_id, score (collaborative)
    records: FittedModel

    @property
    def height(self) -> int:
        """Return the rows of every part."""
        return sum(part.height for part in self.parts)


def neighbor_frame(
    source_ids: np.ndarray, target_ids: np.ndarray, indices: np.ndarray, scores: np.ndarray
) -> pl.DataFrame:
    """Return (source_id, target_id, score, rank) from a model's top-K arrays (-1 = none)."""
    k = indices.shape[1]
    rows = np.repeat(np.arange(indices.shape[0]), k)
    flat, flat_scores = indices.ravel(), scores.ravel()
    keep = (flat >= 0) & np.isfinite(flat_scores)
    return pl.DataFrame(
        {
            "source_id": source_ids[rows[keep]].astype(np.int64),
            "target_id": target_ids[flat[keep]].astype(np.int64),
            "score": flat_scores[keep].astype(np.float64),
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), indices.shape[0])[keep],
        }
    )


def sparse_neighbor_frame(ids: np.ndarray, arrays: tuple) -> pl.DataFrame:
    """Return (source_id, target_id, score, rank) from sparse top-K (rows, cols, scores, ranks)."""
    rows, cols, scores, ranks = arrays
    return pl.DataFrame(
        {
            "source_id": ids[rows].astype(np.int64),
            "target_id": ids[cols].astype(np.int64),
            "score": scores.astype(np.float64),
            "rank": ranks.astype(np.int32),
        }
    )


def typed(frame: pl.DataFrame, source_type: str, target_type: str, kind: str) -> pl.DataFrame:
    """Return neighbour rows labelled as content_similarity rows of one kind."""
    return frame.select(
        pl.lit(source_type).alias("source_type"),
        "source_id",
        pl.lit(target_type).alias("target_type"),
        "target_id",
        pl.lit(kind).alias("similarity_type"),
        "score",
        "rank",
    )


def hybrid(collab: pl.DataFrame, content: pl.DataFrame, alpha: float, k: int) -> pl.DataFrame:
    """Return the top-k of alpha × collaborative + (1 − alpha) × content over both pair sets."""
    key = ["source_id", "target_id"]
    joined = collab.select(*key, pl.col("score").alias("c")).join(
        content.select(*key, pl.col("score").alias("t")), on=key, how="full", coalesce=True
    )
    scored = joined.select(
        *key,
        (alpha * pl.col("c").fill_null(0) + (1 - alpha) * pl.col("t").fill_null(0)).alias("score"),
    )
    ranked = scored.sort(["source_id", "score", "target_id"], descending=[False, True, False])
    ranked = ranked.with_columns(pl.int_range(pl.len()).over("source_id").alias("rank") + 1)
    return ranked.filter(pl.col("rank") <= k).with_columns(pl.col("rank").cast(pl.Int32))


def collaborative_neighbors(matrix: InteractionMatrix, k: int) -> pl.DataFrame:
    """Return item-item collaborative top-k neighbours (cosine) of every item with interactions."""
    model = ItemKNN(k=k).fit(matrix.matrix)
    return sparse_neighbor_frame(matrix.item_ids, topk_neighbors(model.similarity_, k))


def fit_record_model(
    matrix: InteractionMatrix, records: pl.DataFrame, model_params: dict | None = None
) -> FittedModel:
    """Return the RotationRecommender (with `model_params`, default its defaults) fitted on
    the user×record matrix of positive pairs and the records' genres."""
    if matrix.matrix.nnz == 0:
        return FittedModel(matrix, None)
    model = RotationRecommender(**(model_params or {}))
    model.fit(matrix.matrix, item_features=genre_matrix(records, matrix))
    return FittedModel(matrix, model)


def record_collaborative(fitted: FittedModel, k: int) -> pl.DataFrame:
    """Return record-record collaborative top-k neighbours, from the fitted model's cosine kNN.

    The model keeps each record's cosine top-``tail_k`` (ties by lower index), so its top-k
    for k ≤ tail_k is exactly ItemKNN(k)'s; a larger k fits its own ItemKNN.
    """
    if fitted.model is None or k > fitted.model.tail_k:
        return collaborative_neighbors(fitted.matrix, k)
    neighbors = topk_neighbors(fitted.model.knn_.similarity_, k)
    return sparse_neighbor_frame(fitted.matrix.item_ids, neighbors)


def content_neighbors(records: pl.DataFrame, k: int) -> pl.DataFrame:
    """Return record-record content neighbours from metadata (every record, played or not)."""
    tokens = record_tokens(records).sort("record_id")
    model = ContentSimilarity(n_neighbors=k).fit(tokens["tokens"].to_list())
    return sparse_neighbor_frame(tokens["record_id"].to_numpy(), model.neighbor_arrays())


def store_neighbors(inputs: Inputs, k: int) -> pl.DataFrame:
    """Return store-store neighbours by what they stock (cosine over for-sale records)."""
    stock = store_stock(inputs.inventory, inputs.stores)
    if stock.height == 0:
        return collaborative_neighbors(
            to_matrix(
                pl.DataFrame(
                    {"user_id": [], "item_id": [], "weight": []},
                    schema={"user_id": pl.Int64, "item_id": pl.Int64, "weight": pl.Float64},
                )
            ),
            k,
        )
    pairs = stock.select(
        pl.col("record_id").alias("user_id"),
        pl.col("store_id").alias("item_id"),
        pl.lit(1.0).alias("weight"),
    )
    return collaborative_neighbors(to_matrix(pairs), k)


def _fitted_and_collaborative(
    inputs: Inputs, inter: FitInputs, k: int, model_params: dict | None
) -> tuple[FittedModel, pl.DataFrame]:
    fitted = fit_record_model(inter.records, inputs.records, model_params)
    return fitted, record_collaborative(fitted, k)


def compute_similarity(
    inputs: Inputs, inter: FitInputs, params: NightlyParams, model_params: dict | None = None
) -> Similarity:
    """Return the records' and stores' content_similarity rows: collaborative, content and
    hybrid neighbours of records, collaborative ones of stores.

    `model_params`: the record model's parameters (the tune flow's, or None: the defaults).

    The content and store neighbours are computed beside the record model's fit
    (``run_beside``): each keeps the two cores only partly busy on its own. BLAS runs on one
    thread meanwhile, so the fit rounds the same way every run (its scores differ from a fit
    on two BLAS threads in the 7th digit). The track neighbours are a task of their own
    (flows/stages/held_rows.py's ``track_neighbours``), on the shards' user×track matrices.
    """
    k = params.similar_k
    (fitted, record_collab), (record_content, store_collab) = run_beside(
        lambda: _fitted_and_collaborative(inputs, inter, k, model_params),
        lambda: content_neighbors(inputs.records, k),
        lambda: store_neighbors(inputs, k),
    )
    records = pl.concat(
        [
            typed(record_collab, "record", "record", "collaborative"),
            typed(record_content, "record", "record", "content"),
            typed(
                hybrid(record_collab, record_content, params.hybrid_alpha, k),
                "record",
                "record",
                "hybrid",
            ),
        ]
    ).sort(LOOKUP_WITHIN_TYPE, maintain_order=True)
    parts = (  # by source type, in its text order ("track" after them: a task's)
        records,
        typed(store_collab, "store", "store", "collaborative"),  # by (source_id, rank)
    )
    return Similarity(
        parts=parts,
        record_neighbors=record_collab.select("source_id", "target_id", "score"),
        records=fitted,
    )
