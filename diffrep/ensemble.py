"""NoiseEnsembleClassifier and NoiseEnsembleRegressor: one probe per noise level, aggregated.

The paper's practical payoff (its noise-level ensemble): train a linear probe on the
denoiser's features at the best timestep ``t*`` and at its neighbours on the
timestep grid, then average their logits. One trained denoiser serves every
timestep, so the ensemble costs a single denoiser training. The regressor
applies the same recipe to continuous targets and averages predictions.
"""

from __future__ import annotations

from numbers import Integral
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone, is_classifier
from sklearn.metrics import get_scorer_names
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
)

from ._engine.pipelines import chain, is_frozen, split_at_featurizer, unwrapped
from ._engine.sklearn_compat import HasMethods, Interval, StrOptions
from ._engine.sklearn_compat import check_sample_weight as _check_sample_weight
from ._engine.sklearn_compat import fit_context as _fit_context
from ._engine.probes import check_weighted_probe, extract_blocks, fit_featurizer, fit_probe, one_standard_error_choice
from ._engine.selection import make_folds, score_timesteps
from ._engine.validation import check_timesteps
from .featurizer import DiffusionFeaturizer
from .probes import LogisticProbeCV, default_probe, default_regression_probe

if TYPE_CHECKING:
    from collections.abc import Callable
    from ._engine.type_aliases import CVLike, RandomStateLike, TimestepsLike

SELECTIONS = ("neighbors", "all")
AGGREGATIONS = ("logits", "proba", "vote")


class _NoiseEnsemble(BaseEstimator):
    """What the classifier and the regressor share: features, cross-validated selection, probes.

    Subclasses define the default probe (``_default_probe``) and how targets
    are read (``_read_targets``); the folds and the per-timestep scores come
    from :mod:`diffrep._engine.selection`, as those of the curves and the studies.
    """

    _parameter_constraints: dict = {
        "featurizer": [HasMethods(["extract"]), Pipeline, None],
        "timesteps": ["array-like"],
        "selection": [StrOptions(set(SELECTIONS)), "array-like"],
        "n_neighbors": [Interval(Integral, 0, None, closed="left")],
        "estimator": [HasMethods(["fit", "predict"]), None],
        "cv": ["cv_object"],
        "scoring": [StrOptions(set(get_scorer_names())), callable, None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        featurizer: BaseEstimator | None = None,
        timesteps: TimestepsLike = (0, 10, 25, 50, 100, 200),
        selection: str = "neighbors",
        n_neighbors: int = 2,
        estimator: BaseEstimator | None = None,
        cv: CVLike = 3,
        scoring: str | Callable[..., float] | None = None,
        random_state: RandomStateLike = None,
    ):
        self.featurizer = featurizer
        self.timesteps = timesteps
        self.selection = selection
        self.n_neighbors = n_neighbors
        self.estimator = estimator
        self.cv = cv
        self.scoring = scoring
        self.random_state = random_state

    # ------------------------------------------------------------------ checks
    def _featurizer_parts(self):
        """The featurizer to fit (a copy; a frozen one as is), and the steps before it in a Pipeline.

        An unfitted featurizer without a seed is seeded by ``random_state``.
        """
        if self.featurizer is None:
            return DiffusionFeaturizer(random_state=self.random_state), []
        featurizer, before, after = split_at_featurizer(self.featurizer)
        if after:
            raise ValueError(
                f"featurizer is a Pipeline with steps after its DiffusionFeaturizer ({after}); the ensemble fits "
                "its own probes: end the Pipeline with the featurizer and pass the probe as estimator."
            )
        if is_frozen(featurizer):
            check_is_fitted(unwrapped(featurizer))  # before its schedule is asked for
            return featurizer, before
        featurizer = clone(featurizer)
        if featurizer.get_params().get("random_state", 0) is None:
            featurizer.set_params(random_state=self.random_state)
        return featurizer, before

    def _record_input(self, first_step):
        """``n_features_in_`` (and ``feature_names_in_``) as the first fitted step saw ``X``."""
        self.n_features_in_ = first_step.n_features_in_
        names = getattr(first_step, "feature_names_in_", None)
        if names is None:
            vars(self).pop("feature_names_in_", None)
        else:
            self.feature_names_in_ = names

    def _featurizer_input(self, X):
        """``X`` on its way to the featurizer: through the fitted steps before it, if any."""
        return X if self.preprocessor_ is None else self.preprocessor_.transform(X)

    def _probe(self):
        return self._default_probe() if self.estimator is None else self.estimator

    def _check_probe(self, probe):
        """Raise when the probe lacks a method the ensemble needs (subclasses add theirs)."""

    def _check_params(self, sample_weight):
        """Validate what the constraints cannot; return the sorted candidates and an explicit selection.

        The candidates' upper bound is the schedule of the resolved denoiser:
        :func:`fit_featurizer` checks it before any training.
        """
        candidates = tuple(sorted(check_timesteps(self.timesteps)))
        chosen = None
        if not isinstance(self.selection, str):
            chosen = tuple(sorted(check_timesteps(self.selection, name="selection")))
            missing = sorted(set(chosen) - set(candidates))
            if missing:
                raise ValueError(f"selection timesteps {missing} are not among timesteps={list(candidates)}.")
        self._check_probe(self._probe())
        if sample_weight is not None:
            check_weighted_probe(self._probe())
        return candidates, chosen

    # --------------------------------------------------------------- fitting
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None, groups=None):
        """Train the denoiser (unless frozen), select timesteps and fit their probes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n, H, W), (n, C, H, W) or (n, H, W, C)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels (classifier) or real targets (regressor).
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Non-negative weights of the samples (a negative one is refused),
            passed to every probe's ``fit`` (to a
            Pipeline's last step) and to the scoring of the selection. The
            denoiser itself is trained unweighted (it does not see labels).
        groups : array-like of shape (n_samples,) or None, default=None
            Group labels passed to the splitter of ``cv`` (e.g. ``GroupKFold``).

        Returns
        -------
        self : object
            The fitted ensemble.
        """
        featurizer, before = self._featurizer_parts()
        candidates, chosen = self._check_params(sample_weight)
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)  # X is read by the featurizer, which takes whatever it accepts
        targets = self._read_targets(y)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, ensure_non_negative=True)

        self.preprocessor_ = chain(before)
        X_in = X if self.preprocessor_ is None else self.preprocessor_.fit_transform(X, y)
        self.featurizer_ = fit_featurizer(featurizer, X_in, candidates)
        self._record_input(self.featurizer_ if self.preprocessor_ is None else self.preprocessor_)
        blocks = extract_blocks(self.featurizer_, X_in, candidates)
        folds = make_folds(self.cv, targets, groups, classifier=is_classifier(self), random_state=self.random_state)
        scores, path_scores = score_timesteps(self._probe(), self.scoring, blocks, targets, folds, sample_weight)
        self.timestep_scores_ = {
            t: {"mean": float(np.mean(s)), "std": float(np.std(s))} for t, s in zip(candidates, scores)
        }
        if chosen is not None:
            self.selected_timesteps_ = chosen
        elif self.selection == "all":
            self.selected_timesteps_ = candidates
        else:
            best = int(np.argmax(scores.mean(axis=1)))
            self.selected_timesteps_ = candidates[max(0, best - self.n_neighbors) : best + self.n_neighbors + 1]
        probe = self._shared_probe(path_scores, [candidates.index(t) for t in self.selected_timesteps_])
        block_of = dict(zip(candidates, blocks))
        self.estimators_ = [fit_probe(probe, block_of[t], targets, sample_weight) for t in self.selected_timesteps_]
        return self

    def _shared_probe(self, path_scores, selected):
        """The probe of every selected timestep: a path probe at one ``C`` for all of them.

        The ``C`` is chosen on the fold scores averaged over the selected
        timesteps, by the one-standard-error rule of :class:`~diffrep.probes.LogisticProbeCV`.

        One ``C`` for all keeps the logits of the probes on one scale: with a
        ``C`` per timestep, a weakly regularized probe at a near-chance timestep
        outweighed the strongly regularized, informative ones in the average.
        """
        probe = self._probe()
        if not isinstance(probe, LogisticProbeCV):
            return probe
        chosen = one_standard_error_choice(path_scores[selected].mean(axis=0))  # (folds, Cs), averaged over t
        return clone(probe).set_params(Cs=(probe.path()[chosen],))

    def _probe_blocks(self, X):
        """Features of ``X`` at the selected timesteps, one block per fitted probe."""
        check_is_fitted(self)
        return extract_blocks(self.featurizer_, self._featurizer_input(X), self.selected_timesteps_)


class NoiseEnsembleClassifier(ClassifierMixin, _NoiseEnsemble):
    """Probes at several noise levels of one diffusion denoiser, aggregated.

    ``fit`` trains the denoiser once on ``X`` (labels unused), extracts features
    at every candidate timestep in one pass, scores a probe per timestep by
    cross-validation on the training data, selects timesteps, and fits one
    probe per selected timestep. Predictions aggregate the probes.

    Timesteps are indices into the denoiser's DDPM training schedule: **larger
    is noisier** (``sigma_t = sqrt((1 - abar_t) / abar_t)``).

    Parameters
    ----------
    featurizer : DiffusionFeaturizer, FrozenEstimator, Pipeline or None, default=None
        Source of the features. An unfitted featurizer is cloned and fitted on
        ``X``; one wrapped in ``sklearn.frozen.FrozenEstimator`` is used as is
        (no training), so several ensembles can share one trained denoiser.
        A Pipeline that ends in a featurizer (``make_pipeline(column_transformer,
        featurizer)``) has its steps before the featurizer cloned and fitted on
        ``X`` (with ``y``), and ``X`` passes through them on its way to the
        featurizer. ``X`` is read by the featurizer: anything it takes (image
        file paths too) the ensemble takes.
        None means ``DiffusionFeaturizer(random_state=random_state)``; an
        unfitted featurizer whose ``random_state`` is None is seeded with
        ``random_state`` too. The featurizer's own ``timesteps`` parameter is
        not used.
    timesteps : sequence of int, default=(0, 10, 25, 50, 100, 200)
        Candidate timesteps, scored and selected from; sorted ascending to form
        the grid on which neighbours are taken. The default spans the useful
        range of a 1000-step linear schedule: on digits (the README's demo), probes
        fall from 0.89 at t=200 (sigma 0.72) to 0.39 at t=400 (sigma 2.0) and chance beyond,
        and a probe near chance only dilutes the average.
    selection : {"neighbors", "all"} or sequence of int, default="neighbors"
        ``"neighbors"``: the best-scoring candidate ``t*`` plus ``n_neighbors``
        grid neighbours on each side (fewer at the ends of the grid).
        ``"all"``: every candidate. A sequence: exactly these timesteps, which
        must be among ``timesteps``.
    n_neighbors : int, default=2
        Grid neighbours of ``t*`` on each side (``selection="neighbors"`` only);
        0 gives the single best timestep.
    estimator : classifier or None, default=None
        The probe, cloned for every timestep. None means
        :class:`~diffrep.probes.LogisticProbeCV` (standardize, logistic
        regression), whose ``C`` is chosen together with the timesteps: every
        ``C`` of its path is scored on the same folds at every candidate, a
        candidate scores as its best ``C`` (as in
        :func:`~diffrep.curves.representation_curve`), and the selected
        timesteps' probes share one ``C``, chosen on their fold scores
        averaged over them by the one-standard-error rule (see
        ``estimators_[i].C_``), so that their logits average on one scale. The
        training labels choose it, noisy or not: features on a grid of cells
        overfit noisy labels with a fixed ``C=1``. Any other probe is used as
        given.
    aggregation : {"logits", "proba", "vote"}, default="logits"
        ``"logits"``: average the probes' ``decision_function`` (the paper's
        choice); probabilities are the softmax of the average (the logistic
        sigmoid for two classes). ``"proba"``: average ``predict_proba``.
        ``"vote"``: majority vote, ties going to the class listed first in
        ``classes_``; probabilities are the vote fractions.
    cv : int, cross-validation generator, iterable or None, default=3
        How candidates are scored, with the folds of
        :func:`~diffrep.curves.representation_curve`. An int: a stratified
        K-fold, shuffled when ``random_state`` is given (data order
        otherwise), lowered to the size of the smallest class when that is
        smaller (a class of a single sample is an error); None means 5.
        Anything else is used as ``sklearn.model_selection.check_cv`` takes
        it: a splitter (e.g. ``GroupKFold``, with ``groups`` passed to
        ``fit``) or a non-empty iterable of ``(train, test)`` index arrays.
    scoring : str, callable or None, default=None
        The selection score, as in ``cross_val_score``: a scorer name
        (``"balanced_accuracy"``, ``"neg_log_loss"`` ...) or a callable
        ``scorer(estimator, X, y)``; None is the probe's ``score`` (accuracy).
        Larger is better.
    random_state : int, RandomState instance or None, default=None
        Shuffles the folds of an int ``cv`` (the same folds for every timestep;
        None keeps the data order) and seeds an unfitted featurizer that has
        no seed of its own.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_features_in_ : int
        Number of input features, as the featurizer (or the Pipeline's first
        step) counts them: pixels for images, also when read from files.
    feature_names_in_ : ndarray of str
        Column names of a DataFrame ``X``; only defined for such input.
    featurizer_ : DiffusionFeaturizer or FrozenEstimator
        The fitted featurizer (the given frozen one when frozen).
    preprocessor_ : Pipeline or None
        The fitted steps before the featurizer of a Pipeline ``featurizer``;
        None otherwise.
    timestep_scores_ : dict of int -> dict
        For every candidate timestep, the probe's cross-validated score
        ``{"mean": float, "std": float}`` on the training data (for the
        default probe, that of its best ``C``), equal to the scores of
        :func:`~diffrep.curves.representation_curve` on the same folds.
    selected_timesteps_ : tuple of int
        The timesteps whose probes are aggregated, ascending.
    estimators_ : list of estimators
        The fitted probe of each selected timestep, in the same order. They are
        fitted on encoded labels ``0 .. n_classes - 1``.

    See Also
    --------
    NoiseEnsembleRegressor : The same recipe for continuous targets.
    diffrep.DiffusionFeaturizer : The features of one denoiser at chosen timesteps.
    diffrep.curves.representation_curve : Probe score as a function of the timestep.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from diffrep import DiffusionFeaturizer, NoiseEnsembleClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> featurizer = DiffusionFeaturizer(image_shape=(1, 8, 8), max_steps=5, random_state=0)
    >>> clf = NoiseEnsembleClassifier(featurizer, timesteps=(10, 50, 100), n_neighbors=1,
    ...                               random_state=0).fit(X[:200], y[:200])
    >>> len(clf.selected_timesteps_) in (2, 3)
    True
    """

    _parameter_constraints: dict = {
        **_NoiseEnsemble._parameter_constraints,
        "aggregation": [StrOptions(set(AGGREGATIONS))],
    }

    def __init__(
        self,
        featurizer: BaseEstimator | None = None,
        timesteps: TimestepsLike = (0, 10, 25, 50, 100, 200),
        selection: str = "neighbors",
        n_neighbors: int = 2,
        estimator: BaseEstimator | None = None,
        aggregation: str = "logits",
        cv: CVLike = 3,
        scoring: str | Callable[..., float] | None = None,
        random_state: RandomStateLike = None,
    ):
        super().__init__(
            featurizer=featurizer,
            timesteps=timesteps,
            selection=selection,
            n_neighbors=n_neighbors,
            estimator=estimator,
            cv=cv,
            scoring=scoring,
            random_state=random_state,
        )
        self.aggregation = aggregation

    # ---------------------------------------------------------------- hooks
    def _default_probe(self):
        return default_probe()

    def _check_probe(self, probe):
        needed = {"logits": "decision_function", "proba": "predict_proba", "vote": "predict"}[self.aggregation]
        if not hasattr(probe, needed):
            raise TypeError(
                f"estimator must be a classifier with fit and {needed} (needed by "
                f"aggregation={self.aggregation!r}), got {type(probe).__name__}."
            )

    def _read_targets(self, y):
        """Encode the labels as ``0 .. n_classes - 1``; set ``classes_``."""
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        if len(encoder.classes_) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes; y has only one class.")
        self.classes_ = encoder.classes_
        return encoder.transform(y)

    # ------------------------------------------------------------ prediction
    def _class_scores(self, X):
        """Aggregated per-class scores, shape (n_samples, n_classes); argmax is the prediction."""
        blocks = self._probe_blocks(X)
        n_classes = len(self.classes_)
        total = np.zeros((blocks[0].shape[0], n_classes))
        for probe, block in zip(self.estimators_, blocks):
            if self.aggregation == "vote":
                total[np.arange(len(block)), probe.predict(block)] += 1.0
            elif self.aggregation == "proba":
                total += probe.predict_proba(block)
            else:
                logits = probe.decision_function(block)
                if logits.ndim == 1:  # binary: the logit of classes_[1] against classes_[0]
                    logits = np.column_stack([np.zeros_like(logits), logits])
                total += logits
        return total / len(self.estimators_)

    def decision_function(self, X):
        """Aggregated class scores: mean logits, mean probabilities or vote fractions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n, H, W) or (n, C, H, W)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            For two classes, the score of ``classes_[1]`` minus that of
            ``classes_[0]`` (positive means ``classes_[1]``).
        """
        scores = self._class_scores(X)
        return scores[:, 1] - scores[:, 0] if len(self.classes_) == 2 else scores

    def predict_proba(self, X):
        """Class probabilities of the ensemble.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n, H, W) or (n, C, H, W)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Softmax of the mean logits, mean probabilities or vote fractions,
            depending on ``aggregation``; columns follow ``classes_``.
        """
        scores = self._class_scores(X)
        return softmax(scores, axis=1) if self.aggregation == "logits" else scores

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n, H, W) or (n, C, H, W)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        scores = self._class_scores(X)
        return self.classes_[np.argmax(scores, axis=1)]


class NoiseEnsembleRegressor(RegressorMixin, _NoiseEnsemble):
    """Regression probes at several noise levels of one diffusion denoiser, averaged.

    The recipe of :class:`NoiseEnsembleClassifier` for continuous targets:
    ``fit`` trains the denoiser once on ``X`` (targets unused), extracts
    features at every candidate timestep in one pass, scores a probe per
    timestep by cross-validation on the training data (R^2 unless ``scoring``
    says otherwise), selects timesteps and fits one probe per selected
    timestep; ``predict`` averages their predictions.

    Timesteps are indices into the denoiser's DDPM training schedule: **larger
    is noisier**.

    Parameters
    ----------
    featurizer : DiffusionFeaturizer, FrozenEstimator, Pipeline or None, default=None
        Source of the features, as in :class:`NoiseEnsembleClassifier`: fitted
        on ``X`` unless frozen, after the steps before it in a Pipeline; None means
        ``DiffusionFeaturizer(random_state=random_state)``.
    timesteps : sequence of int, default=(0, 10, 25, 50, 100, 200)
        Candidate timesteps, sorted ascending into the grid of neighbours.
    selection : {"neighbors", "all"} or sequence of int, default="neighbors"
        ``"neighbors"``: the best-scoring candidate ``t*`` plus ``n_neighbors``
        grid neighbours on each side; ``"all"``: every candidate; a sequence:
        exactly these timesteps, which must be among ``timesteps``.
    n_neighbors : int, default=2
        Grid neighbours of ``t*`` on each side (``selection="neighbors"`` only).
    estimator : regressor or None, default=None
        The probe, cloned for every timestep. None means
        :func:`diffrep.probes.default_regression_probe`: standardize, then
        ``RidgeCV`` choosing its penalty (0.1, 1 or 10) by leave-one-out.
    cv : int, cross-validation generator, iterable or None, default=3
        How candidates are scored, with the folds of
        :func:`~diffrep.curves.representation_curve`. An int: a K-fold,
        shuffled when ``random_state`` is given (data order otherwise), with
        at most one fold per two samples (fewer than four samples is an
        error); None means 5. Anything else as
        ``sklearn.model_selection.check_cv`` takes it: a splitter
        (``GroupKFold`` with ``groups`` passed to ``fit``) or a non-empty
        iterable of ``(train, test)`` index arrays.
    scoring : str, callable or None, default=None
        The selection score: a scorer name (``"neg_mean_absolute_error"`` ...)
        or a callable ``scorer(estimator, X, y)``; None is the probe's
        ``score`` (R^2). Larger is better.
    random_state : int, RandomState instance or None, default=None
        Shuffles the folds of an int ``cv`` (None keeps the data order) and
        seeds an unfitted featurizer that has no seed of its own.

    Attributes
    ----------
    n_features_in_ : int
        Number of input features, as the featurizer (or the Pipeline's first
        step) counts them: pixels for images, also when read from files.
    feature_names_in_ : ndarray of str
        Column names of a DataFrame ``X``; only defined for such input.
    featurizer_ : DiffusionFeaturizer or FrozenEstimator
        The fitted featurizer (the given frozen one when frozen).
    preprocessor_ : Pipeline or None
        The fitted steps before the featurizer of a Pipeline ``featurizer``;
        None otherwise.
    timestep_scores_ : dict of int -> dict
        For every candidate timestep, the probe's cross-validated score
        ``{"mean": float, "std": float}`` on the training data.
    selected_timesteps_ : tuple of int
        The timesteps whose probes are averaged, ascending.
    estimators_ : list of estimators
        The fitted probe of each selected timestep, in the same order.

    See Also
    --------
    NoiseEnsembleClassifier : The same recipe for class labels.
    diffrep.curves.representation_curve : Probe score as a function of the timestep.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from diffrep import DiffusionFeaturizer, NoiseEnsembleRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> featurizer = DiffusionFeaturizer(max_steps=5, random_state=0)
    >>> reg = NoiseEnsembleRegressor(featurizer, timesteps=(10, 50, 100), n_neighbors=1,
    ...                              random_state=0).fit(X, y)
    >>> reg.predict(X[:3]).shape
    (3,)
    """

    def _default_probe(self):
        return default_regression_probe()

    def _read_targets(self, y):
        """The targets as a finite float array."""
        return check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")

    def predict(self, X):
        """The mean of the selected probes' predictions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n, H, W), (n, C, H, W) or (n, H, W, C)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        blocks = self._probe_blocks(X)
        return np.mean([probe.predict(block) for probe, block in zip(self.estimators_, blocks)], axis=0)
