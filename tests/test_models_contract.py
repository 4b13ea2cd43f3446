"""One contract suite over every model: the models are discovered in the models package.

Every concrete Recommender runs the recommender contract with its default parameters, and
every ItemSimilarity model (neighbours, content_similarity's rows) the neighbour contract:
a new model class is in the suite without being named here. VARIANTS adds parameter sets
worth covering on top of the defaults (the candidate path, genres).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.utils import get_tags

import models
from models.base import ItemSimilarity, Recommender, top_n
from models.linear import EASE, Popularity
from models.matrix import InteractionMatrix
from models.neighbors import ItemKNN
from models.recommender import MODEL_VERSION, RotationRecommender

N_USERS, N_ITEMS = 60, 40
LOWPASS = ((4, 0.6), (8, 0.3))


def discovered_models() -> list[type]:
    """Return every concrete Recommender or ItemSimilarity class of the models package."""
    for module in pkgutil.walk_packages(models.__path__, "models."):
        importlib.import_module(module.name)
    found = set()
    pending = [Recommender, ItemSimilarity]
    while pending:
        for cls in pending.pop().__subclasses__():
            pending.append(cls)
            if cls.__module__.startswith("models.") and not inspect.isabstract(cls):
                found.add(cls)
    return sorted(found, key=lambda cls: cls.__name__)


def item_genres(n_items: int) -> sp.csr_matrix:
    """Return n_items × 4 genres: item i has genre i % 3, and genre 3 when i % 7 == 0."""
    rows = np.concatenate([np.arange(n_items), np.arange(0, n_items, 7)])
    cols = np.concatenate([np.arange(n_items) % 3, np.full(len(range(0, n_items, 7)), 3)])
    return sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n_items, 4))


class WithGenres(RotationRecommender):
    """RotationRecommender fitted with `item_genres` (the suite calls fit(X) alone)."""

    def fit(self, X, y=None, item_features=None):
        """Return self fitted with the test genres."""
        return super().fit(X, y, item_features=item_genres(X.shape[1]))


VARIANTS = {
    "ItemKNN-k10": lambda: ItemKNN(k=10, similarity="cosine"),
    "ItemKNN-jaccard": lambda: ItemKNN(k=10, similarity="jaccard", shrink=1.0),
    "EASE-l2-10": lambda: EASE(l2=10.0),
    "RotationRecommender-small": lambda: RotationRecommender(l2=10.0, lowpass=LOWPASS),
    "RotationRecommender-tail": lambda: RotationRecommender(
        l2=10.0, lowpass=LOWPASS, max_dense_items=15
    ),
    "RotationRecommender-small-head": lambda: RotationRecommender(
        l2=10.0, lowpass=LOWPASS, max_dense_items=5
    ),
    "RotationRecommender-genres": lambda: WithGenres(l2=10.0, lowpass=LOWPASS),
    "RotationRecommender-genres-tail": lambda: WithGenres(
        l2=10.0, lowpass=LOWPASS, max_dense_items=15
    ),
}
MODELS = {cls.__name__: cls for cls in discovered_models()} | VARIANTS
RECOMMENDERS = sorted(n for n, make in MODELS.items() if isinstance(make(), Recommender))
NEIGHBOURS = sorted(n for n, make in MODELS.items() if isinstance(make(), ItemSimilarity))


def test_discovery_finds_every_production_model():
    names = {cls.__name__ for cls in discovered_models()}
    assert {"RotationRecommender", "ItemKNN", "EASE", "Popularity", "ContentSimilarity"} <= names
    assert "ContentSimilarity" in NEIGHBOURS and "Popularity" not in NEIGHBOURS


@pytest.fixture(scope="module")
def X() -> sp.csr_matrix:
    rng = np.random.default_rng(7)
    popularity = rng.pareto(1.5, N_ITEMS) + 0.1
    dense = rng.random((N_USERS, N_ITEMS)) < 0.35 * popularity / popularity.max() + 0.05
    dense[0] = False  # a user without history
    dense[1, :] = True  # a user who has seen everything
    return sp.csr_matrix(dense.astype(np.float32))


@pytest.fixture(params=RECOMMENDERS)
def make(request):
    return MODELS[request.param]


@pytest.fixture
def fitted(make, X):
    return make().fit(X)


def test_fit_returns_self_and_sets_underscore_attributes(make, X):
    model = make()
    before = set(vars(model))
    assert all(not key.endswith("_") for key in before)
    assert model.fit(X) is model
    added = set(vars(model)) - before
    assert added and all(key.endswith("_") for key in added)


def test_clone_and_get_params_round_trip(make):
    model = make()
    params = model.get_params()
    twin = clone(model)
    assert twin is not model and twin.get_params() == params
    assert type(model)(**params).get_params() == params


def test_shapes_dtypes_and_padding(fitted, X):
    users = np.arange(N_USERS)
    idx, scores = fitted.recommend(X, users, 12)
    assert idx.shape == scores.shape == (N_USERS, 12)
    assert idx.dtype == np.int32 and scores.dtype == np.float32
    assert (idx[1] == -1).all() and np.isneginf(scores[1]).all()  # saw everything
    pad = idx == -1
    assert (np.isneginf(scores) == pad).all()
    assert (np.diff(pad.astype(int), axis=1) >= 0).all()  # -1 only at the end


def test_all_items_when_n_exceeds_catalogue(fitted, X):
    idx, _ = fitted.recommend(X, [2, 3], N_ITEMS + 5)
    for row, user in zip(idx, [2, 3], strict=True):
        assert (row >= 0).sum() == N_ITEMS - X[user].nnz


def test_no_seen_items_and_unique_rows(fitted, X):
    idx, _ = fitted.recommend(X, np.arange(N_USERS), 15)
    for user, row in enumerate(idx):
        items = row[row >= 0]
        assert len(set(items)) == len(items)
        assert not set(items) & set(X[user].indices)


def test_seen_items_allowed_without_filter(fitted, X):
    idx, _ = fitted.recommend(X, [1], 5, filter_seen=False)
    assert (idx >= 0).all()


def test_excluded_items_never_recommended(fitted, X):
    rng = np.random.default_rng(3)
    exclude = sp.csr_matrix((rng.random(X.shape) < 0.3).astype(np.float32))
    idx, _ = fitted.recommend(X, np.arange(N_USERS), 10, exclude=exclude)
    for user, row in enumerate(idx):
        assert not set(row[row >= 0]) & set(exclude[user].indices)


def test_scores_descending_ties_by_index(fitted, X):
    idx, scores = fitted.recommend(X, np.arange(N_USERS), 10)
    finite = np.where(np.isfinite(scores), scores, np.float32(-1e30))
    assert (np.diff(finite, axis=1) <= 0).all()
    same = (np.diff(finite, axis=1) == 0) & (idx[:, 1:] >= 0)
    assert (idx[:, 1:][same] > idx[:, :-1][same]).all()


def test_batching_does_not_change_results(fitted, X):
    users = np.arange(N_USERS)
    a = fitted.recommend(X, users, 10, batch_size=7)
    b = fitted.recommend(X, users, 10)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_threaded_batches_give_the_serial_results(fitted, X, monkeypatch):
    import models.kernels.parallel as parallel

    users = np.arange(N_USERS)
    monkeypatch.setattr(parallel, "WORKER_THREADS", 1)
    serial = fitted.recommend(X, users, 10, batch_size=5)
    monkeypatch.setattr(parallel, "WORKER_THREADS", 2)
    threaded = fitted.recommend(X, users, 10, batch_size=5)
    np.testing.assert_array_equal(serial[0], threaded[0])
    np.testing.assert_array_equal(serial[1], threaded[1])


def test_deterministic_across_fits(make, X):
    users = np.arange(N_USERS)
    a = make().fit(X).recommend(X, users, 10)
    b = make().fit(X).recommend(X, users, 10)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_recommendations_beat_chance(fitted):
    """Users in two taste groups: every taste model recommends within the group.

    Popularity ignores taste by design: it must return each user's most-interacted unseen
    items instead (ties by lower index), which is what this checks for it.
    """
    rng = np.random.default_rng(1)
    group = np.repeat([0, 1], 30)
    liked = rng.random((60, 40)) < 0.5
    liked &= (np.arange(40)[None, :] < 20) == (group[:, None] == 0)
    X = sp.csr_matrix(liked.astype(np.float32))
    idx, _ = clone(fitted).fit(X).recommend(X, np.arange(60), 3)
    if isinstance(fitted, Popularity):
        counts = np.diff(X.tocsc().indptr)
        for user, row in enumerate(idx):
            unseen = np.setdiff1d(np.arange(40), X[user].indices)
            expected = unseen[np.lexsort((unseen, -counts[unseen]))][:3]
            np.testing.assert_array_equal(row, expected)
        return
    in_group = (idx < 20) == (group[:, None] == 0)
    assert in_group[idx >= 0].mean() > 0.9


def test_rotation_cold_user_gets_popular_items(X):
    model = RotationRecommender(l2=10.0, lowpass=LOWPASS).fit(X)
    idx, _ = model.recommend(X, [0], 5)
    counts = np.diff(X.tocsc().indptr)
    expected = np.lexsort((np.arange(N_ITEMS), -counts))[:5]
    np.testing.assert_array_equal(idx[0], expected)
    assert isinstance(MODEL_VERSION, str) and MODEL_VERSION


def test_top_n_breaks_ties_by_lower_index():
    scores = np.array([[1, 3, 3, 2, -np.inf], [0, 0, 0, 0, 0]], dtype=np.float32)
    idx, val = top_n(scores, 3)
    np.testing.assert_array_equal(idx, [[1, 2, 3], [0, 1, 2]])
    np.testing.assert_array_equal(val, [[3, 3, 2], [0, 0, 0]])
    idx, val = top_n(scores[:1], 6)
    np.testing.assert_array_equal(idx, [[1, 2, 3, 0, -1, -1]])


def test_interaction_matrix_sums_duplicates_and_maps_ids():
    m = InteractionMatrix.from_arrays([30, 10, 30, 30], [7, 5, 7, 9], [1, 2, 3, 1], all_items=[11])
    np.testing.assert_array_equal(m.user_ids, [10, 30])
    np.testing.assert_array_equal(m.item_ids, [5, 7, 9, 11])
    assert m.matrix.dtype == np.float32 and m.matrix.shape == (2, 4)
    np.testing.assert_array_equal(m.matrix.toarray(), [[2, 0, 0, 0], [0, 4, 1, 0]])
    np.testing.assert_array_equal(m.user_index([30, 99, 10]), [1, -1, 0])
    np.testing.assert_array_equal(m.item_index([11, 4, 5]), [3, -1, 0])


def test_top_n_matches_full_sort_reference():
    rng = np.random.default_rng(11)
    scores = rng.integers(0, 4, (50, 30)).astype(np.float32)  # many ties
    scores[rng.random(scores.shape) < 0.3] = -np.inf
    idx, val = top_n(scores, 8)
    for row, got, got_val in zip(scores, idx, val, strict=True):
        order = np.lexsort((np.arange(30), -row))
        order = order[np.isfinite(row[order])][:8]
        np.testing.assert_array_equal(got[: len(order)], order)
        assert (got[len(order) :] == -1).all()
        np.testing.assert_array_equal(got_val[: len(order)], row[order])


@pytest.mark.parametrize("model_class", [RotationRecommender, WithGenres])
@pytest.mark.parametrize("head", [5, 15, 30])
def test_rotation_candidate_path_matches_dense_ranking(X, head, model_class):
    """RotationRecommender.recommend (head dense + tail kNN candidates) ranks like score_users."""
    model = model_class(l2=10.0, lowpass=LOWPASS, max_dense_items=head).fit(X)
    exclude = sp.csr_matrix((np.random.default_rng(5).random(X.shape) < 0.2).astype(np.float32))
    for n in (3, 10, N_ITEMS):
        for kwargs in ({}, {"exclude": exclude}, {"filter_seen": False}):
            fast = model.recommend(X, np.arange(N_USERS), n, batch_size=11, **kwargs)
            dense = Recommender.recommend(model, X, np.arange(N_USERS), n, **kwargs)
            np.testing.assert_array_equal(fast[0], dense[0])
            np.testing.assert_array_equal(fast[1], dense[1])


def test_rotation_dense_head_size_rule():
    from models.recommender import dense_size

    assert dense_size(1682, 75_000, 10_000) == 1682
    assert dense_size(50_000, 5_800_000, 10_000) == 2962
    assert dense_size(50_000, 10**9, 10_000) == 1024
    assert dense_size(50_000, 1000, 3000) == 3000


def test_rotation_item_features_must_have_a_row_per_item(X):
    with pytest.raises(ValueError, match="item_features has 39 rows; X has 40 items"):
        RotationRecommender(l2=10.0).fit(X, item_features=item_genres(N_ITEMS - 1))


def test_rotation_genres_lift_the_items_of_a_users_genres(X):
    """A user whose history is all genre-0 items gets more genre-0 items with the genre parts."""
    genres = item_genres(N_ITEMS)
    genre0 = np.flatnonzero(genres[:, 0].toarray().ravel())
    rows = sp.vstack([X, sp.csr_matrix(np.isin(np.arange(N_ITEMS), genre0[:4]), dtype=np.float32)])
    user = rows.shape[0] - 1

    def share_of_genre0(**params) -> float:
        model = RotationRecommender(l2=10.0, lowpass=LOWPASS, **params)
        idx, _ = model.fit(rows, item_features=genres).recommend(rows, [user], 6)
        return float(np.isin(idx[0], genre0).mean())

    assert share_of_genre0(genre_weight=3.0, side_weight=30.0) > share_of_genre0(
        genre_weight=0.0, side_weight=0.0
    )


def test_genre_lift_is_the_items_genre_share_over_the_catalogues():
    from models.recommender import genre_lift

    F = sp.csr_matrix(np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0]], dtype=np.float64))
    # genre shares: 2/3, 1/3, 0; item 0 all genre 0, item 1 half each, item 2 none
    np.testing.assert_allclose(genre_lift(F), [[1.5, 0.75, 0], [0, 1.5, 0], [0, 0, 0]])


# the neighbour contract ---------------------------------------------------------------------


def item_tokens(n_items: int) -> list[list[str]]:
    """Return token lists: two genres, a decade, an artist per pair of items; item 5 has none."""
    docs = [[f"genre:{i % 2}", f"decade:{i % 5}", f"artist:{i // 2}"] for i in range(n_items)]
    docs[5] = []
    return docs


def fit_input(model, X):
    """Return what `model` is fitted on, by its scikit-learn input tags: X or token lists."""
    return item_tokens(X.shape[1]) if get_tags(model).input_tags.string else X


@pytest.fixture(params=NEIGHBOURS)
def neighbour_model(request, X):
    model = MODELS[request.param]()
    return model.fit(fit_input(model, X))


def test_neighbour_models_follow_the_estimator_contract(neighbour_model, X):
    fresh = clone(neighbour_model)
    assert not any(key.endswith("_") for key in vars(fresh))
    assert fresh.fit(fit_input(fresh, X)) is fresh
    assert any(key.endswith("_") for key in vars(fresh))
    assert type(fresh)(**fresh.get_params()).get_params() == fresh.get_params()


def test_similar_items_shapes_padding_and_no_self(neighbour_model):
    idx, scores = neighbour_model.similar_items(np.arange(N_ITEMS), 5)
    assert idx.shape == scores.shape == (N_ITEMS, 5)
    assert np.issubdtype(idx.dtype, np.integer) and np.issubdtype(scores.dtype, np.floating)
    assert all(item not in row for item, row in enumerate(idx))
    pad = idx == -1
    assert (np.isneginf(scores) == pad).all()
    assert (np.diff(pad.astype(int), axis=1) >= 0).all()  # -1 only at the end
    for row in idx:
        kept = row[row >= 0]
        assert len(set(kept)) == len(kept)


def test_similar_items_descend_ties_by_lower_index(neighbour_model):
    idx, scores = neighbour_model.similar_items(np.arange(N_ITEMS), 8)
    finite = np.where(np.isfinite(scores), scores, np.float32(-1e30))
    assert (np.diff(finite, axis=1) <= 0).all()
    same = (np.diff(finite, axis=1) == 0) & (idx[:, 1:] >= 0)
    assert (idx[:, 1:][same] > idx[:, :-1][same]).all()


def test_similar_items_are_deterministic_across_fits(neighbour_model, X):
    again = clone(neighbour_model).fit(fit_input(neighbour_model, X))
    first = neighbour_model.similar_items(np.arange(N_ITEMS), 6)
    second = again.similar_items(np.arange(N_ITEMS), 6)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_an_item_without_features_has_no_content_neighbour(X):
    model = MODELS["ContentSimilarity"]()
    idx, _ = model.fit(fit_input(model, X)).similar_items([5], 3)
    assert (idx == -1).all()
