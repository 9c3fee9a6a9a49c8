"""Does the denoiser generalize or memorize? The paper's second finding, as a diagnostic.

A denoiser that generalizes shows the unimodal representation curve (probe
accuracy rises from the smallest noise level to a moderate one, then falls);
one that memorizes its training set (few samples, long training) shows a
curve that falls from the smallest noise level on, and so does an untrained
network (Li et al., NeurIPS 2025). Curve shape alone cannot tell memorization
from under-training; the denoising error can: a memorizing denoiser recovers
its training samples far better than new ones.
:func:`generalization_report` measures both signals and states a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import TYPE_CHECKING

import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d

from ._engine.sklearn_compat import HasMethods, Interval, validate_params
from ._engine.sklearn_compat import safe_indexing as _safe_indexing
from ._engine.denoising_error import baseline_errors, x0_errors
from ._engine.pipelines import unwrapped
from ._engine.reuse import shared_work
from ._engine.tables import import_pandas
from ._engine.validation import Count, check_timesteps
from .curves import representation_curve
from .probes import default_probe

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any
    from numpy.typing import ArrayLike
    from sklearn.base import BaseEstimator
    from ._engine.type_aliases import CVLike, RandomStateLike, TimestepsLike

VERDICTS = ("generalizing", "memorizing", "inconclusive")
# The paper's sweep of a DDPM-linear schedule of 1,000 steps (without t=999, where every curve is at chance).
SWEEP = (0, 10, 25, 50, 100, 200, 400, 700)
# A rise counts when it exceeds this many standard errors of the fold differences.
RISE_STANDARD_ERRORS = 2.0


@dataclass(frozen=True)
class GeneralizationReport:
    """What :func:`generalization_report` measured, and its verdict.

    Parameters
    ----------
    verdict : {"generalizing", "memorizing", "inconclusive"}
        See :func:`generalization_report` for the rule.
    reasons : tuple of str
        Why the verdict is what it is, in words (the failed conditions of an
        ``"inconclusive"``).
    table : pandas.DataFrame
        One row per timestep.
    error_ratio : float
        The largest held-out / training error ratio over the timesteps.
    error_ratio_interval : tuple of float
        Its 95% bootstrap interval (samples resampled).
    ratio_timestep : int
        The timestep of the largest ratio.
    denoising_gain : float
        The smallest, over the timesteps, held-out error / baseline error
        (the better trivial denoiser's).
    peak_timestep : int or None
        Timestep of the highest mean accuracy; None without labels.
    rise : float or None
        Mean over folds of accuracy at the peak minus accuracy at the
        smallest timestep; None without labels.
    rise_se : float or None
        Standard error of ``rise`` (standard deviation of the per-fold
        differences over the square root of the number of folds).
    fold_scores : ndarray of shape (n_timesteps, n_folds) or None
        Probe accuracy of every fold at every timestep; None without labels.

    Attributes
    ----------
    verdict, reasons, table, error_ratio, error_ratio_interval, ratio_timestep, denoising_gain : see Parameters
    peak_timestep, rise, rise_se, fold_scores : see Parameters
    """

    verdict: str
    reasons: tuple
    table: Any = field(repr=False)
    error_ratio: float
    error_ratio_interval: tuple
    ratio_timestep: int
    denoising_gain: float
    peak_timestep: int | None = None
    rise: float | None = None
    rise_se: float | None = None
    fold_scores: np.ndarray | None = field(default=None, repr=False)

    def summary(self):
        """The headline numbers as a dict (one row of a comparison table).

        Returns
        -------
        summary : dict
            ``verdict``, ``error_ratio``, ``error_ratio_low``, ``error_ratio_high``,
            ``ratio_timestep``, ``denoising_gain``, ``peak_timestep``, ``rise``,
            ``rise_se`` (the last three None without labels).
        """
        low, high = self.error_ratio_interval
        return {
            "verdict": self.verdict,
            "error_ratio": self.error_ratio,
            "error_ratio_low": low,
            "error_ratio_high": high,
            "ratio_timestep": self.ratio_timestep,
            "denoising_gain": self.denoising_gain,
            "peak_timestep": self.peak_timestep,
            "rise": self.rise,
            "rise_se": self.rise_se,
        }

    def summary_text(self):
        """The verdict and the numbers behind it, in a few lines of text.

        Returns
        -------
        text : str
        """
        low, high = self.error_ratio_interval
        lines = [
            f"verdict: {self.verdict}",
            f"held-out / training x0-error: {self.error_ratio:.2f} at t={self.ratio_timestep} "
            f"(95% interval {low:.2f}-{high:.2f})",
            f"best held-out x0-error / trivial denoiser's: {self.denoising_gain:.2f}",
        ]
        if self.peak_timestep is not None:
            first = int(self.table["timestep"].iloc[0])
            lines.append(
                f"probe accuracy: peak at t={self.peak_timestep}, rise from t={first}: "
                f"{self.rise:+.3f} ± {self.rise_se:.3f}"
            )
        lines += [f"  - {reason}" for reason in self.reasons]
        return "\n".join(lines)

    def __str__(self):
        return self.summary_text()


def _featurizer(featurizer):
    """The fitted DiffusionFeaturizer behind ``featurizer`` (a ``FrozenEstimator`` is unwrapped)."""
    from .featurizer import DiffusionFeaturizer

    inner = unwrapped(featurizer)
    if not isinstance(inner, DiffusionFeaturizer):
        raise TypeError(
            "featurizer must be a fitted DiffusionFeaturizer (or one wrapped in FrozenEstimator), "
            f"got {type(inner).__name__}."
        )
    check_is_fitted(inner)
    return inner


def _default_timesteps(schedule):
    """The paper's sweep, rescaled to the schedule's length."""
    length = schedule.num_train_timesteps
    return tuple(sorted({min(length - 1, round(t * length / 1000)) for t in SWEEP}))


def _subsample(X, max_samples, rng):
    """At most ``max_samples`` rows of ``X``, chosen at random (all, in order, when there are fewer)."""
    n_samples = len(X)
    if n_samples <= max_samples:
        return X
    return _safe_indexing(X, np.sort(rng.choice(n_samples, size=max_samples, replace=False)))


def _ratio_interval(train_errors, heldout_errors, n_bootstrap, rng):
    """95% bootstrap interval of the largest per-timestep error ratio (both sample sets resampled)."""
    if n_bootstrap == 0:
        return (float("nan"), float("nan"))
    train = train_errors[rng.randint(len(train_errors), size=(n_bootstrap, len(train_errors)))].mean(axis=1)
    heldout = heldout_errors[rng.randint(len(heldout_errors), size=(n_bootstrap, len(heldout_errors)))].mean(axis=1)
    ratios = (heldout / train).max(axis=1)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return (float(low), float(high))


def _accuracy(featurizer, X, y, timesteps, probe, cv, random_state):
    """Fold scores of the held-out probe at every timestep, shape (n_timesteps, n_folds)."""
    curve = representation_curve(
        FrozenEstimator(featurizer), X, y, timesteps, estimator=default_probe() if probe is None else probe,
        cv=cv, random_state=random_state, task="classification",
    )
    return curve[[c for c in curve.columns if c.startswith("score_")]].to_numpy(dtype=float)


def _rise(fold_scores, timesteps):
    """Peak timestep, mean rise over folds from the smallest timestep to it, and its standard error."""
    peak = int(np.argmax(fold_scores.mean(axis=1)))  # ties go to the smaller timestep: no rise
    differences = fold_scores[peak] - fold_scores[0]
    n_folds = len(differences)
    se = float(differences.std(ddof=1) / np.sqrt(n_folds)) if n_folds > 1 else float("nan")
    return int(timesteps[peak]), float(differences.mean()), se


def _verdict(ratio_interval, gain, rise, ratio_threshold, max_gain):
    """The verdict and its reasons, following the rule of :func:`generalization_report`."""
    low, high = ratio_interval
    if low > ratio_threshold:
        return "memorizing", (
            f"the held-out error exceeds the training error by more than {ratio_threshold}x "
            f"(95% interval of the ratio {low:.2f}-{high:.2f})",
        )
    reasons = []
    if not high < ratio_threshold:
        reasons.append(
            f"the error ratio's 95% interval ({low:.2f}-{high:.2f}) reaches {ratio_threshold}: "
            "memorization is not excluded (more samples would narrow it)"
        )
    if not gain < max_gain:
        reasons.append(
            f"the denoiser's best held-out error is {gain:.2f}x the trivial denoiser's "
            f"(at least {max_gain}): untrained or barely trained"
        )
    if rise is None:
        reasons.append("no labels: the unimodal curve, the sign of generalization, is not measured")
    else:
        peak, value, se = rise
        if not (value > 0 and value > RISE_STANDARD_ERRORS * se):
            reasons.append(
                f"no significant interior peak (rise {value:+.3f} ± {se:.3f} to t={peak}, not above "
                f"{RISE_STANDARD_ERRORS:g} standard errors): the curve does not clearly rise from the smallest "
                "timestep, as for an under-trained, untrained or memorizing denoiser"
            )
    if reasons:
        return "inconclusive", tuple(reasons)
    return "generalizing", (
        "training and held-out errors agree, the denoiser beats the trivial one, and the accuracy "
        "rises to an interior peak",
    )


def _table(timesteps, sigmas, train_errors, heldout_errors, baseline, fold_scores):
    """The per-timestep table of the report."""
    table = import_pandas().DataFrame({
        "timestep": np.asarray(timesteps, dtype=np.int64),
        "sigma": np.asarray(sigmas, dtype=float),
        "train_error": train_errors.mean(axis=0),
        "heldout_error": heldout_errors.mean(axis=0),
    })
    table["error_ratio"] = table["heldout_error"] / table["train_error"]
    table["baseline_error"] = baseline
    if fold_scores is not None:
        table["accuracy"] = fold_scores.mean(axis=1)
        table["accuracy_std"] = fold_scores.std(axis=1)
    return table


@validate_params(
    {
        "featurizer": [HasMethods(["extract"])],
        "X_train": ["array-like"],
        "X_heldout": ["array-like"],
        "y_heldout": ["array-like", None],
        "timesteps": ["array-like", Interval(Integral, 0, None, closed="left"), None],
        "probe": [HasMethods(["fit", "score"]), None],
        "cv": ["cv_object"],
        "max_samples": [Count(2)],
        "n_bootstrap": [Count(0)],
        "ratio_threshold": [Interval(Real, 1, None, closed="left")],
        "max_gain": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=False,
)
def generalization_report(
    featurizer: BaseEstimator,
    X_train: ArrayLike,
    X_heldout: ArrayLike,
    y_heldout: ArrayLike | None = None,
    timesteps: TimestepsLike | None = None,
    *,
    probe: BaseEstimator | None = None,
    cv: CVLike = 5,
    max_samples: int | None = 1000,
    n_bootstrap: int = 200,
    ratio_threshold: float = 1.2,
    max_gain: float = 0.8,
    random_state: RandomStateLike = None,
):
    """Does a fitted denoiser generalize or memorize? Denoising errors, probe accuracy and a verdict.

    Per timestep (larger = noisier) the denoiser's clean-input estimate
    ``x0_hat`` (the ``"x0"`` source) is compared with the clean sample, on
    samples it was trained on (``X_train``) and on samples it never saw
    (``X_heldout``): the error of a sample is the mean over its elements of
    ``(x0_hat - x0)**2``, in the space the denoiser works in (scaled data, or
    a pipeline's latents). Every sample is noised exactly as ``transform``
    noises it (its own deterministic noise, the first draw), so the errors are
    those of the features' inputs. No labels are needed for this part. With
    ``y_heldout``, a probe is cross-validated on the held-out features at
    every timestep (the curve of :func:`~diffrep.representation_curve`,
    frozen featurizer), and the rise from the smallest timestep to the peak
    is measured fold by fold.

    **The verdict rule.** Let ``r`` be the largest held-out / training error
    ratio over the timesteps and ``[r_lo, r_hi]`` its 95% bootstrap interval
    (training and held-out samples resampled); ``g`` the smallest, over the
    timesteps, held-out error divided by that of the better of two trivial
    denoisers (the ``baseline_error`` column): returning the noisy input
    unchanged, and shrinking it towards the training mean as the Gaussian
    posterior mean that knows only the training data's mean and variance; ``rise`` the mean over
    folds of (accuracy at the peak - accuracy at the smallest timestep) and
    ``se`` its standard error.

    * ``"memorizing"`` when ``r_lo > ratio_threshold``: the denoiser recovers
      its training samples clearly better than new ones.
    * ``"generalizing"`` when ``r_hi < ratio_threshold``, ``g < max_gain``
      (it has learned to denoise new samples: an untrained network has
      ``g >= 1``), labels are given and ``rise > 2 se`` with ``rise > 0``
      (a significant interior peak: the paper's unimodal curve).
    * ``"inconclusive"`` otherwise, with the failed conditions in ``reasons``:
      an under-trained model (its curve falls from the smallest timestep,
      the errors agree), an untrained one, an ambiguous ratio, or no labels.

    Parameters
    ----------
    featurizer : DiffusionFeaturizer or sklearn.frozen.FrozenEstimator
        Fitted (trained, or a pretrained or theory denoiser); never refitted
        or changed.
    X_train : array-like
        Samples the denoiser was trained on, as ``transform`` takes them.
    X_heldout : array-like
        Samples it never saw, from the same distribution (a random split:
        a shift between the two sets raises the error ratio too).
    y_heldout : array-like of shape (n_heldout,) or None, default=None
        Class labels of ``X_heldout``: adds the probe accuracy and the rise.
    timesteps : int, array-like of int or None, default=None
        Timesteps to measure; None is the paper's sweep ``(0, 10, 25, 50,
        100, 200, 400, 700)`` (rescaled to a schedule of another length).
        Sorted; the rise is measured from the smallest.
    probe : estimator or None, default=None
        The probe, cloned per timestep and fold; None is
        :func:`diffrep.probes.default_probe` (a logistic regression whose
        ``C`` is chosen by cross-validation).
    cv : int, cross-validation generator or iterable, default=5
        Folds of the held-out probe, as :func:`~diffrep.representation_curve`
        takes them (an int: a stratified K-fold, shuffled when
        ``random_state`` is given). At least two folds give the rise a standard error.
    max_samples : int, default=1000
        The errors are measured on at most this many training and this many
        held-out samples (chosen at random); the probe uses every held-out sample.
    n_bootstrap : int, default=200
        Bootstrap resamples of the error ratio's interval; 0 gives a NaN
        interval, hence never ``"memorizing"`` nor ``"generalizing"``.
    ratio_threshold : float >= 1, default=1.2
        Error ratio separating memorization from generalization.
    max_gain : float > 0, default=0.8
        A generalizing denoiser's best held-out error must be below this
        fraction of the trivial denoiser's.
    random_state : int, RandomState instance or None, default=None
        Seeds the subsampling, the bootstrap and the folds of an int ``cv``.

    Returns
    -------
    report : GeneralizationReport
        ``verdict``, ``reasons``, ``table`` (a pandas DataFrame, one row per
        timestep: ``timestep``, ``sigma``, ``train_error``,
        ``heldout_error``, ``error_ratio``, ``baseline_error``, and with
        labels ``accuracy`` and ``accuracy_std``, the mean and standard
        deviation over folds) and the summary numbers (``error_ratio``,
        ``error_ratio_interval``, ``ratio_timestep``, ``denoising_gain``,
        ``peak_timestep``, ``rise``, ``rise_se``); ``summary()`` gives them as
        a dict, ``str(report)`` as text.

    Raises
    ------
    TypeError
        If ``featurizer`` is not a fitted DiffusionFeaturizer.
    ValueError
        If ``y_heldout`` does not match ``X_heldout`` or is not class labels,
        or a timestep lies outside the schedule.

    See Also
    --------
    diffrep.representation_curve : The probe-accuracy curve alone.
    diffrep.plotting.plot_generalization_report : Plot the report.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from diffrep import DiffusionFeaturizer, generalization_report
    >>> X, y = load_digits(return_X_y=True)
    >>> featurizer = DiffusionFeaturizer(image_shape=(1, 8, 8), max_steps=5, random_state=0).fit(X[:20])
    >>> report = generalization_report(featurizer, X[:20], X[1000:1200], y[1000:1200], timesteps=(0, 50),
    ...                                cv=2, random_state=0)
    >>> report.verdict in ("generalizing", "memorizing", "inconclusive")
    True
    >>> report.table.columns.tolist()[:5]
    ['timestep', 'sigma', 'train_error', 'heldout_error', 'error_ratio']
    """
    fitted = _featurizer(featurizer)
    schedule = fitted.schedule_
    if timesteps is None:
        timesteps = _default_timesteps(schedule)
    timesteps = tuple(sorted(check_timesteps(timesteps, schedule.num_train_timesteps)))
    if y_heldout is not None:
        y_heldout = column_or_1d(y_heldout)
        check_consistent_length(X_heldout, y_heldout)
        check_classification_targets(y_heldout)
    rng = check_random_state(random_state)
    sigmas = schedule.sigmas(timesteps)
    with shared_work():  # the probe's extractions serve each held-out sample once per timestep
        train_errors, train_targets = x0_errors(fitted, _subsample(X_train, max_samples, rng), timesteps)
        heldout_errors, heldout_targets = x0_errors(fitted, _subsample(X_heldout, max_samples, rng), timesteps)
        fold_scores = None
        if y_heldout is not None:
            seed = rng.randint(np.iinfo(np.int32).max)
            fold_scores = _accuracy(fitted, X_heldout, y_heldout, timesteps, probe, cv, seed)
    baseline = baseline_errors(train_targets, heldout_targets, sigmas)
    ratios = heldout_errors.mean(axis=0) / train_errors.mean(axis=0)
    interval = _ratio_interval(train_errors, heldout_errors, n_bootstrap, rng)
    gain = float(np.min(heldout_errors.mean(axis=0) / baseline))
    rise = None if fold_scores is None else _rise(fold_scores, timesteps)
    verdict, reasons = _verdict(interval, gain, rise, ratio_threshold, max_gain)
    peak, rise_value, rise_se = (None, None, None) if rise is None else rise
    return GeneralizationReport(
        verdict=verdict,
        reasons=reasons,
        table=_table(timesteps, sigmas, train_errors, heldout_errors, baseline, fold_scores),
        error_ratio=float(ratios.max()),
        error_ratio_interval=interval,
        ratio_timestep=int(timesteps[int(np.argmax(ratios))]),
        denoising_gain=gain,
        peak_timestep=peak,
        rise=rise_value,
        rise_se=rise_se,
        fold_scores=fold_scores,
    )


@validate_params(
    {
        "featurizer": [HasMethods(["fit", "extract"])],
        "X_pool": ["array-like"],
        "X_heldout": ["array-like"],
        "y_heldout": ["array-like", None],
        "sizes": ["array-like"],
        "report_params": [dict, None],
    },
    prefer_skip_nested_validation=False,
)
def training_size_study(
    featurizer: BaseEstimator,
    X_pool: np.ndarray | Sequence[Any],
    X_heldout: ArrayLike,
    y_heldout: ArrayLike | None = None,
    sizes: Sequence[int | None] = (10, 50, 200, None),
    *,
    report_params: dict[str, Any] | None = None,
):
    """The decisive experiment: one denoiser per training-set size, each diagnosed on the same held-out data.

    A clone of ``featurizer`` is fitted on the first ``n`` samples of
    ``X_pool`` for each ``n`` of ``sizes`` (shuffle the pool first; the sets are
    nested) and :func:`generalization_report` compares its training samples
    with ``X_heldout``. A memorizing denoiser (few samples, long training)
    should lose the interior peak of the curve and show a held-out / training
    error ratio well above 1.

    Parameters
    ----------
    featurizer : DiffusionFeaturizer
        Unfitted settings of the denoiser (cloned per size; ``memory=`` makes
        a rerun free).
    X_pool : array-like
        Training samples, in the order the subsets take them.
    X_heldout : array-like
        Samples no denoiser is trained on.
    y_heldout : array-like of shape (n_heldout,) or None, default=None
        Class labels of ``X_heldout``.
    sizes : sequence of int or None, default=(10, 50, 200, None)
        Training-set sizes; None is the whole pool.
    report_params : dict or None, default=None
        Keyword arguments of :func:`generalization_report` (``timesteps``,
        ``cv``, ``random_state``, ...).

    Returns
    -------
    table : pandas.DataFrame
        One row per size: ``n_train``, ``n_steps`` (training steps taken), then
        the report's ``summary()``.
    reports : dict of int -> GeneralizationReport
        Each size's report, keyed by its number of training samples.

    Raises
    ------
    ValueError
        If a size is not a positive integer or exceeds the pool.
    """
    from sklearn.base import clone

    n_pool = len(X_pool)
    counts = []
    for size in sizes:
        if size is not None and (isinstance(size, bool) or not isinstance(size, Integral) or not 2 <= size <= n_pool):
            raise ValueError(f"sizes must hold integers in [2, len(X_pool)={n_pool}] or None, got {size!r}.")
        counts.append(n_pool if size is None else int(size))
    rows, reports = [], {}
    for count in counts:
        X_train = _safe_indexing(X_pool, np.arange(count))
        fitted = clone(featurizer).fit(X_train)
        reports[count] = generalization_report(fitted, X_train, X_heldout, y_heldout, **(report_params or {}))
        rows.append({"n_train": count, "n_steps": fitted.n_steps_, **reports[count].summary()})
    return import_pandas().DataFrame(rows), reports
