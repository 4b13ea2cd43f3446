"""Self-tuning: RotationRecommender's hyperparameters chosen on validation data carved out of
the training interactions, within a fixed budget, then refitted on all of them.

Procedure (``tune``): each validation split is a (fit, validation) pair of matrices made from
the training data only: per-user random (``validation_split``, as ``rotation evaluate``'s
protocol) or, in the nightly's tune flow, the most recent days (built by the caller). The
model is fitted once per split with the starting parameters; every candidate is then scored
by validation nDCG@k (mean over the splits' validation users) after changing only what it changes:

1. ``l2`` coarse: the incumbent × 1/27, 1/9, 1/3, 3, 9 (the issue's sparse data wanted a
   much smaller ridge; bench/tune.py's grids showed l2 as the head's main knob);
2. ``l2`` fine: the stage-1 winner × 3^-½, 3^½;
3. ``dropout`` 0.25, 0.75;
4. the low-pass weights scaled by 0, 0.5, 2 (same ranks);
5. with item genres: ``genre_weight`` 0, 0.25, 1 and ``side_weight`` 0, 40;
6. with a long tail (items past the dense head): ``tail_weight`` 0.5, 2.

A stage's best candidate replaces the incumbent only when its score beats the incumbent's
by more than ``min_gain`` (relative) and its gain is significant, paired over the validation
users (mean per-user gain above ``SIGNIFICANCE_Z`` standard errors): validation noise alone
never moves the defaults. A relative threshold alone let a 10 % validation split of dense
data move ``l2`` on gains that did not hold on held-out data (bench/README, issue 34). The
budget is the number of candidates scored beyond the start; stages run in the order above
until it is spent (``DEFAULT_BUDGET`` covers every stage); budget 0 is the defaults, no
split made. Ties go to the earlier candidate. Deterministic for a seed.

Shared work: candidates differing in l2, dropout or side_weight reuse the split's Gram
matrices (``RotationRecommender.head_grams``: one D×D inverse per candidate, no new Gram);
the low-pass, genre and tail weights only enter at scoring time, so the SVD basis and the
kNN lists of the first fit serve every candidate. ``input_exponent`` and ``item_exponent``
are not searched: each would need a new Gram or SVD per candidate (a full fit) for changes
within the split-to-split noise on bench/tune.py's grids.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from models.base import ItemSimilarity, Recommender, as_csr
from models.evaluation import score_users
from models.recommender import RotationRecommender
from models.split import stratified_split

#: Candidates scored beyond the start when no budget is given: every stage of the plan.
DEFAULT_BUDGET = 20
#: Share of each user's training pairs held out for validation (per-user random split).
VALIDATION_SHARE = 0.10
#: Relative validation gain a stage's winner needs to replace the incumbent.
MIN_GAIN = 0.005
#: Standard errors of the paired per-user gain a stage's winner also needs (one-sided ≈ 2.3 %).
SIGNIFICANCE_Z = 2.0
#: Stages of the plan (``_plan``).
STAGES = 6
#: The parameters the search may change (the rest stay as given).
TUNED = ("l2", "dropout", "lowpass", "side_weight", "genre_weight", "tail_weight")
HEAD = ("l2", "dropout", "side_weight")  # those that need the head's weights recomputed

L2_COARSE = (1 / 27, 1 / 9, 1 / 3, 3.0, 9.0)
L2_FINE = (3**-0.5, 3**0.5)
DROPOUTS = (0.25, 0.75)
LOWPASS_SCALES = (0.0, 0.5, 2.0)
GENRE_WEIGHTS = (0.0, 0.25, 1.0)
SIDE_WEIGHTS = (0.0, 40.0)
TAIL_WEIGHTS = (0.5, 2.0)


def normalised(params: dict) -> dict:
    """Return RotationRecommender parameters with ``lowpass`` as a tuple of (rank, weight)
    tuples (as JSON gives it back as lists)."""
    out = dict(params)
    if "lowpass" in out:
        out["lowpass"] = tuple((int(k), float(w)) for k, w in out["lowpass"])
    return out


def validation_split(X, share: float = VALIDATION_SHARE, seed: int = 0):
    """Return (fit, validation) CSR matrices: a per-user random split of X's stored pairs.

    Users with fewer than 4 pairs keep them all in fit (models/split.py's rule); the rest
    hold out max(1, round(share · n)) pairs each, drawn with ``seed``.
    """
    X = as_csr(X)
    coo = X.tocoo()  # canonical CSR: rows, then columns, ascending
    _, test = stratified_split(coo.row, coo.col, test_share=share, seed=seed)
    parts = []
    for mask in (~test, test):
        data = np.ones(int(mask.sum()), np.float32)
        parts.append(sp.csr_matrix((data, (coo.row[mask], coo.col[mask])), shape=X.shape))
    return parts[0], parts[1]


def _sample(rows: np.ndarray, cap: int | None, seed: int) -> np.ndarray:
    """Return ``rows`` or a seeded sorted sample of ``cap`` of them."""
    if cap is None or rows.size <= cap:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, size=cap, replace=False))


@dataclass
class _Split:
    """One validation split's fitted model, Gram parts and scored users."""

    fit: sp.csr_matrix
    validation: sp.csr_matrix
    model: RotationRecommender
    grams: object
    users: np.ndarray


@dataclass(frozen=True)
class TuningResult:
    """The chosen parameters, their validation score, the start's, and every trial."""

    params: dict
    score: float | None
    default_score: float | None
    trials: list = field(default_factory=list)  # [(params, score)], in the order scored


def _plan(incumbent: dict, stage: int, genres: bool, tail: bool) -> list[dict]:
    """Return stage ``stage``'s candidates (parameter changes) around ``incumbent``."""
    if stage == 0:
        return [{"l2": incumbent["l2"] * f} for f in L2_COARSE]
    if stage == 1:
        return [{"l2": incumbent["l2"] * f} for f in L2_FINE]
    if stage == 2:
        return [{"dropout": p} for p in DROPOUTS if p != incumbent["dropout"]]
    if stage == 3:
        lowpass = incumbent["lowpass"]
        return [{"lowpass": tuple((k, w * s) for k, w in lowpass)} for s in LOWPASS_SCALES]
    if stage == 4 and genres:
        weights = [{"genre_weight": w} for w in GENRE_WEIGHTS if w != incumbent["genre_weight"]]
        sides = [{"side_weight": w} for w in SIDE_WEIGHTS if w != incumbent["side_weight"]]
        return weights + sides
    if stage == 5 and tail:
        return [{"tail_weight": w} for w in TAIL_WEIGHTS if w != incumbent["tail_weight"]]
    return []


def _prepare(splits, start: dict, item_features, max_users, seed) -> list[_Split]:
    """Return each split fitted with the start parameters, with its Gram parts."""
    prepared = []
    for fit, validation in splits:
        fit, validation = as_csr(fit), as_csr(validation)
        model = RotationRecommender(**start).fit(fit, item_features=item_features)
        users = _sample(np.flatnonzero(np.diff(validation.indptr) > 0), max_users, seed)
        grams = model.head_grams(fit, item_features)
        prepared.append(_Split(fit, validation, model, grams, users))
    return prepared


def _user_scores(prepared: list[_Split], params: dict, k: int) -> np.ndarray:
    """Return the validation nDCG@k of ``params`` per scored user, the splits' users one
    after another (the same order for every candidate: a paired comparison reads them)."""
    scores = []
    for split in prepared:
        before = {key: getattr(split.model, key) for key in HEAD}
        split.model.set_params(**params)
        if any(getattr(split.model, key) != before[key] for key in HEAD):
            split.model.refit_head(split.grams)
        if not split.users.size:
            continue
        figures = score_users(split.model, split.fit, split.validation, k, users=split.users)
        scores.append(figures["ndcg_at_k"])
    return np.concatenate(scores) if scores else np.zeros(0)


def _mean(scores: np.ndarray) -> float:
    """Return the mean of per-user scores (0 when there are none)."""
    return float(scores.mean()) if scores.size else 0.0


def significant_gain(
    challenger: np.ndarray, incumbent: np.ndarray, min_gain: float, z: float = SIGNIFICANCE_Z
) -> bool:
    """Return True when ``challenger``'s per-user scores beat ``incumbent``'s (same users,
    same order) by more than ``min_gain`` relative and by more than ``z`` standard errors of
    the mean paired difference."""
    if challenger.size < 2:
        return False
    diff = challenger - incumbent
    gain = float(diff.mean())
    error = float(diff.std(ddof=1)) / np.sqrt(diff.size)
    return gain > _mean(incumbent) * min_gain and gain > z * error


def tune(
    splits,
    *,
    start: dict | None = None,
    item_features=None,
    budget: int = DEFAULT_BUDGET,
    k: int = 10,
    min_gain: float = MIN_GAIN,
    max_users: int | None = None,
    seed: int = 0,
) -> TuningResult:
    """Return the parameters chosen on ``splits`` ((fit, validation) matrix pairs) by the
    staged search of this module, within ``budget`` candidates beyond ``start``.

    ``start``: RotationRecommender parameters (default: its defaults); the result's
    ``params`` are the tuned keys (``TUNED``). ``max_users`` caps the validation users
    scored per split (a sample seeded with ``seed``).
    """
    base = {**RotationRecommender().get_params(), **(start or {})}
    incumbent = {key: base[key] for key in TUNED}
    if budget <= 0 or not splits:
        return TuningResult(incumbent, None, None, [])
    prepared = _prepare(splits, base, item_features, max_users, seed)
    genres = item_features is not None and prepared[0].model.lift_ is not None
    tail = any(split.model.tail_items_.size for split in prepared)
    best_users = _user_scores(prepared, incumbent, k)
    best = _mean(best_users)
    trials, default_score, left = [(dict(incumbent), best)], best, budget
    for stage in range(STAGES):
        seen = [params for params, _ in trials]
        candidates = [
            params
            for change in _plan(incumbent, stage, genres, tail)
            if (params := {**incumbent, **change}) not in seen
        ][:left]
        if not candidates:
            continue
        left -= len(candidates)
        scored = [(params, _user_scores(prepared, params, k)) for params in candidates]
        trials += [(params, _mean(users)) for params, users in scored]
        # max keeps the first of equals
        winner, users = max(scored, key=lambda pair: _mean(pair[1]))
        if significant_gain(users, best_users, min_gain):
            incumbent, best_users, best = winner, users, _mean(users)
        if left <= 0:
            break
    return TuningResult(dict(incumbent), best, default_score, trials)


class TunedRecommender(Recommender, ItemSimilarity):
    """RotationRecommender whose hyperparameters ``fit`` chooses (``tune``) on a validation
    split of its own training data, then refits on all of it with the winner.

    ``fit(X, item_features=None, validation=None)``: without ``validation`` the splits are
    ``folds`` per-user random ones (``validation_split``, seeds random_state + 1, + 2, …);
    with it, the given (fit, validation) pairs (e.g. the most recent days). Memory: the
    final model's, plus per split one fitted model and two D×D Gram parts during the search.
    """

    def __init__(
        self,
        budget: int = DEFAULT_BUDGET,
        validation_share: float = VALIDATION_SHARE,
        folds: int = 1,
        min_gain: float = MIN_GAIN,
        k: int = 10,
        max_users: int | None = None,
        start: dict | None = None,
        random_state: int = 42,
    ):
        self.budget = budget
        self.validation_share = validation_share
        self.folds = folds
        self.min_gain = min_gain
        self.k = k
        self.max_users = max_users
        self.start = start
        self.random_state = random_state

    def fit(self, X, y=None, item_features=None, validation=None):
        """Return self with ``tuning_`` (a TuningResult), ``best_params_`` and ``model_``
        (the RotationRecommender refitted on all of X with them)."""
        X = as_csr(X)
        splits = validation
        if splits is None and self.budget > 0:
            seeds = range(self.random_state + 1, self.random_state + 1 + self.folds)
            splits = [validation_split(X, self.validation_share, seed) for seed in seeds]
        self.tuning_ = tune(
            splits or [],
            start=self.start,
            item_features=item_features,
            budget=self.budget,
            k=self.k,
            min_gain=self.min_gain,
            max_users=self.max_users,
            seed=self.random_state,
        )
        self.best_params_ = self.tuning_.params
        params = {**(self.start or {}), **self.best_params_}
        self.model_ = RotationRecommender(**params).fit(X, item_features=item_features)
        return self

    def score_users(self, X, user_rows) -> np.ndarray:
        """Return the refitted model's dense scores (len(user_rows) × n_items), float32."""
        return self.model_.score_users(X, user_rows)

    def recommend(self, X, user_rows, n: int, **options) -> tuple[np.ndarray, np.ndarray]:
        """Return the refitted model's (item indices, scores), as RotationRecommender's."""
        return self.model_.recommend(X, user_rows, n, **options)

    def similar_items(self, item_rows, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Return the refitted model's collaborative neighbours of each item."""
        return self.model_.similar_items(item_rows, n)
