"""Label noise: exact-rate corruption of training labels and robustness studies."""

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from diffrep import DiffusionFeaturizer
from diffrep.ensemble import NoiseEnsembleClassifier
from diffrep.label_noise import corrupt_labels, label_noise_study

from .helpers import TINY

NAMES = np.array(["cat", "dog", "emu", "gnu"])


@pytest.mark.parametrize("n, rate", [(100, 0.0), (100, 0.2), (97, 0.35), (10, 0.25), (50, 1.0), (1797, 0.8)])
@pytest.mark.parametrize("kind", ["symmetric", "asymmetric"])
def test_exactly_the_requested_number_of_labels_change(n, rate, kind):
    y = np.arange(n) % 4
    noisy = corrupt_labels(y, rate, kind=kind, random_state=0)
    assert (noisy != y).sum() == round(rate * n)


def test_symmetric_noise_picks_uniformly_among_the_other_classes():
    y = np.zeros(30000, dtype=int)
    y[10000:20000], y[20000:] = 1, 2
    noisy = corrupt_labels(y, 1.0, random_state=0)
    assert np.all(noisy != y)  # a corrupted label never keeps its true class
    for true_class in range(3):
        new = noisy[y == true_class]
        shares = np.bincount(new, minlength=3) / len(new)
        assert shares[true_class] == 0.0
        np.testing.assert_allclose(np.delete(shares, true_class), 0.5, atol=0.02)


def test_string_labels_are_corrupted_into_a_new_array():
    y = NAMES[np.arange(40) % 4]
    original = y.copy()
    noisy = corrupt_labels(y, 0.5, random_state=1)
    np.testing.assert_array_equal(y, original)
    assert noisy is not y and noisy.dtype == y.dtype
    assert set(noisy) <= set(NAMES) and (noisy != y).sum() == 20
    listed = corrupt_labels(list(y), 0.5, random_state=1)
    np.testing.assert_array_equal(listed, noisy)


def test_the_same_random_state_gives_the_same_corruption():
    y = np.arange(200) % 5
    np.testing.assert_array_equal(corrupt_labels(y, 0.3, random_state=7), corrupt_labels(y, 0.3, random_state=7))
    assert np.any(corrupt_labels(y, 0.3, random_state=7) != corrupt_labels(y, 0.3, random_state=8))


def test_pair_flips_follow_the_given_mapping():
    y = NAMES[np.arange(100) % 4]
    mapping = {"cat": "dog", "dog": "cat", "emu": "gnu", "gnu": "cat"}
    noisy = corrupt_labels(y, 0.6, kind="asymmetric", mapping=mapping, random_state=0)
    changed = noisy != y
    assert changed.sum() == 60
    assert all(mapping[old] == new for old, new in zip(y[changed], noisy[changed]))


def test_a_random_pair_flip_is_one_cycle_through_all_classes():
    y = np.arange(100) % 5
    noisy = corrupt_labels(y, 1.0, kind="asymmetric", random_state=3)
    mapping = {int(old): set(noisy[y == old].tolist()) for old in range(5)}
    assert all(len(targets) == 1 and old not in targets for old, targets in mapping.items())
    successor = {old: targets.pop() for old, targets in mapping.items()}
    visited, current = set(), 0
    while current not in visited:
        visited.add(current)
        current = successor[current]
    assert visited == set(range(5))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(rate=-0.1), ValueError, r"'rate' parameter .* range \[0.0, 1.0\]"),
        (dict(rate=1.5), ValueError, r"'rate' parameter .* range \[0.0, 1.0\]"),
        (dict(rate="half"), TypeError, r"'rate' parameter .* float"),
        (dict(rate=0.2, kind="pairwise"), ValueError, "'kind' parameter"),
        (dict(rate=0.2, mapping={0: 1, 1: 0}), ValueError, "only used with kind='asymmetric'"),
        (dict(rate=0.2, kind="asymmetric", mapping={0: 1}), ValueError, "missing"),
        (dict(rate=0.2, kind="asymmetric", mapping={0: 0, 1: 0}), ValueError, "map to themselves"),
        (dict(rate=0.2, kind="asymmetric", mapping={0: 1, 1: 7}), ValueError, "must be classes of y"),
        (dict(rate=0.2, kind="asymmetric", mapping=[1, 0]), TypeError, "'mapping' parameter .* 'dict'"),
    ],
)
def test_invalid_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        corrupt_labels(np.arange(10) % 2, **kwargs)


def test_a_single_class_cannot_be_corrupted():
    with pytest.raises(ValueError, match="single class"):
        corrupt_labels(np.zeros(10), 0.5)
    np.testing.assert_array_equal(corrupt_labels(np.zeros(10), 0.0), np.zeros(10))


# --------------------------------------------------------------------------- study
def _raw_probe():
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))


def test_study_reports_every_estimator_and_rate_on_clean_test_labels(digits):
    X, y = digits[0][:400], digits[1][:400]
    table = label_noise_study({"raw": _raw_probe()}, X, y, rates=(0.0, 0.8), n_repeats=3, random_state=0)
    assert table.columns.tolist() == ["estimator", "rate", "mean", "std", "score_0", "score_1", "score_2"]
    assert table["rate"].tolist() == [0.0, 0.8]
    scores = table[["score_0", "score_1", "score_2"]].to_numpy()
    np.testing.assert_allclose(table["mean"], scores.mean(axis=1))
    np.testing.assert_allclose(table["std"], scores.std(axis=1))
    # The split is exactly train_test_split(..., stratify=y, random_state=random_state); test labels stay clean.
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    np.testing.assert_allclose(scores[0], _raw_probe().fit(X_train, y_train).score(X_test, y_test))
    assert table["mean"][1] < table["mean"][0] - 0.05  # 80% wrong labels hurt
    assert table["std"][1] > 0  # each repeat corrupts differently


def test_study_trains_each_featurizer_once(digits_small, trainings):
    X, y = digits_small
    ensemble = NoiseEnsembleClassifier(
        DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY), timesteps=(10, 50), n_neighbors=0, cv=2, random_state=0
    )
    pipeline = make_pipeline(
        DiffusionFeaturizer(image_shape=(1, 8, 8), timesteps=(25,), **TINY), LogisticRegression(max_iter=300)
    )
    estimators = {"ensemble": ensemble, "pipeline": pipeline, "raw": _raw_probe()}
    table = label_noise_study(estimators, X, y, rates=(0, 0.2, 0.4, 0.6, 0.8), n_repeats=3, random_state=0)
    assert len(table) == 15
    # 5 rates x 3 repeats x 2 featurized estimators, yet one training: the two featurizers differ only in
    # timesteps, which training does not depend on.
    assert len(trainings) == 1


def test_study_shares_one_training_between_identical_featurizers(digits_small, trainings):
    X, y = digits_small
    featurizer = DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY)
    estimators = {
        "single": NoiseEnsembleClassifier(featurizer, timesteps=(10, 50), n_neighbors=0, cv=2, random_state=0),
        "ensemble": NoiseEnsembleClassifier(featurizer, timesteps=(10, 50), n_neighbors=1, cv=2, random_state=0),
    }
    label_noise_study(estimators, X, y, rates=(0, 0.5), n_repeats=2, random_state=0)
    assert len(trainings) == 1


def test_study_trains_the_default_featurizer_of_an_ensemble_once(digits_small, skipped_trainings):
    X, y = digits_small  # the trainings are skipped: the default's 2000 steps would take minutes
    X = X.reshape(-1, 8, 8)  # images, so that the default featurizer builds a UNet
    ensemble = NoiseEnsembleClassifier(timesteps=(10, 50), n_neighbors=0, cv=2, random_state=0)
    label_noise_study({"ensemble": ensemble}, X, y, rates=(0, 0.5), n_repeats=2, random_state=0)
    assert len(skipped_trainings) == 1


def _encoded_pipeline(featurizer, last=None):
    from sklearn.compose import make_column_transformer
    from sklearn.preprocessing import OneHotEncoder

    encode = make_column_transformer((OneHotEncoder(), ["city"]), remainder="passthrough")
    return make_pipeline(encode, featurizer, last if last is not None else LogisticRegression(max_iter=300))


@pytest.fixture(scope="module")
def frame(table):
    pandas = pytest.importorskip("pandas")
    X, y = table
    frame = pandas.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    frame["city"] = np.where(X[:, 3] > 0, "Paris", "Lyon")
    return frame, y


def test_study_shares_a_featurizer_that_comes_after_a_column_transformer(frame, trainings):
    X, y = frame
    shared = _encoded_pipeline(DiffusionFeaturizer(**TINY))
    table = label_noise_study({"encoded": shared}, X, y, rates=(0, 0.4), n_repeats=2, random_state=0)
    assert len(trainings) == 1  # 2 rates x 2 repeats, one training
    trainings.clear()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    fresh = _encoded_pipeline(DiffusionFeaturizer(**TINY)).fit(X_train, y_train)
    assert table["score_0"].iloc[0] == pytest.approx(fresh.score(X_test, y_test))


def test_a_featurizer_after_supervised_steps_trains_once_per_distinct_input(frame, trainings):
    from sklearn.feature_selection import SelectKBest

    X, y = frame

    def supervised():
        return make_pipeline(_encoded_pipeline(SelectKBest(k=4), last=DiffusionFeaturizer(**TINY)), _raw_probe())

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback, no warning: the featurizer sees what the fit gives it
        table = label_noise_study({"selected": supervised()}, X, y, rates=(0, 0.4), n_repeats=2, random_state=0)
    assert len(trainings) <= 3  # 4 fits, but the two on clean labels select the same columns: one training
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    assert table["score_0"].iloc[0] == pytest.approx(supervised().fit(X_train, y_train).score(X_test, y_test))


def test_study_takes_a_splitter_groups_and_scoring(digits_small, trainings):
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import GroupKFold

    X, y = digits_small
    groups = np.arange(len(y)) // 40
    pipeline = make_pipeline(DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY), LogisticRegression(max_iter=300))
    table = label_noise_study(
        {"p": pipeline, "raw": _raw_probe()}, X, y, rates=(0.0,), n_repeats=2, random_state=0,
        cv=GroupKFold(3), groups=groups, scoring="balanced_accuracy",
    )
    assert len(trainings) == 3  # one training per fold
    assert [c for c in table.columns if c.startswith("score_")] == [f"score_{i}" for i in range(6)]
    for fold, (train, test) in enumerate(GroupKFold(3).split(X, y, groups)):
        raw = _raw_probe().fit(X[train], y[train])
        expected = balanced_accuracy_score(y[test], raw.predict(X[test]))
        assert table.loc[table["estimator"] == "raw", f"score_{2 * fold}"].item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="groups is used by the splitter of cv"):
        label_noise_study({"raw": _raw_probe()}, X, y, groups=groups)


def test_study_rejects_bad_arguments_before_training(digits_small, trainings):
    X, y = digits_small
    with pytest.raises(TypeError, match="'estimators' parameter .* 'dict'"):
        label_noise_study([_raw_probe()], X, y)
    with pytest.raises(TypeError, match=r"estimators\['x'\] must have fit and score"):
        label_noise_study({"x": "not an estimator"}, X, y)
    featurized = {"f": NoiseEnsembleClassifier(DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY))}
    with pytest.raises(ValueError, match=r"'rates' parameter .* must be in \[0, 1\]"):
        label_noise_study(featurized, X, y, rates=(0.0, 1.2))
    with pytest.raises(ValueError, match=r"'n_repeats' parameter .* \[1, inf\)"):
        label_noise_study(featurized, X, y, n_repeats=0)
    assert trainings == []


def test_plot_label_noise_study_draws_one_line_per_estimator():
    pandas = pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from diffrep.plotting import plot_label_noise_study

    table = pandas.DataFrame(
        {"estimator": ["a", "a", "b", "b"], "rate": [0.0, 0.4] * 2, "mean": [0.9, 0.8, 0.7, 0.6], "std": [0.01] * 4},
    )
    ax = plot_label_noise_study(table)
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["a", "b"]
    np.testing.assert_allclose(ax.containers[1].lines[0].get_ydata(), [0.7, 0.6])
    np.testing.assert_allclose(ax.containers[1].lines[0].get_xdata(), [0.0, 40.0])
    assert ax.get_xlabel().startswith("training labels corrupted")
    matplotlib.pyplot.close(ax.figure)


def test_study_extracts_each_sample_at_each_timestep_once(digits_small, monkeypatch):
    from diffrep._engine.extraction import FeatureExtractor

    pairs = []
    real = FeatureExtractor.transform

    def counting(self, data, timesteps, *args, **kwargs):
        pairs.append(len(data) * len(timesteps))
        return real(self, data, timesteps, *args, **kwargs)

    monkeypatch.setattr(FeatureExtractor, "transform", counting)
    X, y = digits_small
    ensemble = NoiseEnsembleClassifier(
        DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY), timesteps=(10, 50), n_neighbors=0, cv=2, random_state=0
    )
    label_noise_study({"ensemble": ensemble}, X, y, rates=(0, 0.2, 0.4, 0.6, 0.8), n_repeats=3, random_state=0)
    # 5 rates x 3 repeats of fit and score used to extract 3150 (sample, timestep) pairs in 30 calls.
    assert sum(pairs) == len(X) * 2


def test_uniform_noise_redraws_over_all_classes_and_keeps_the_true_one_one_time_in_k():
    y = np.arange(40000) % 4
    original = y.copy()
    noisy = corrupt_labels(y, 0.8, kind="uniform", random_state=0)
    np.testing.assert_array_equal(y, original)
    redrawn = round(0.8 * len(y))
    # 80% redrawn over 4 classes: a quarter of them keep their class, so 60% end up wrong, not 80%.
    assert abs((noisy != y).mean() - 0.8 * 3 / 4) < 0.01
    assert (noisy != y).sum() < redrawn
    for true_class in range(4):
        changed = noisy[(y == true_class) & (noisy != y)]
        shares = np.bincount(changed, minlength=4) / len(changed)
        np.testing.assert_allclose(np.delete(shares, true_class), 1 / 3, atol=0.02)


def test_uniform_noise_is_not_the_default_and_refuses_a_mapping():
    y = np.arange(300) % 3
    assert (corrupt_labels(y, 1.0, random_state=0) != y).all()  # the default still always changes the class
    assert (corrupt_labels(y, 1.0, kind="uniform", random_state=0) == y).any()
    with pytest.raises(ValueError, match="mapping"):
        corrupt_labels(y, 0.5, kind="uniform", mapping={0: 1, 1: 2, 2: 0})


def test_the_study_table_names_its_label_noise_convention():
    from sklearn.dummy import DummyClassifier

    X, y = np.zeros((60, 2)), np.arange(60) % 3
    table = label_noise_study({"dummy": DummyClassifier()}, X, y, rates=(0.5,), n_repeats=1, kind="uniform",
                              random_state=0)
    assert table.attrs["label_noise"] == "uniform"
