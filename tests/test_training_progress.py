"""A long silent training says once how long it will take; a verbose one shows its loss."""

import sys
import warnings

import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from diffrep.exceptions import CostWarning
from diffrep import DiffusionFeaturizer
from diffrep._engine import training_callbacks

from .helpers import TINY


class SlowClock:
    """A clock on which every reading is ``seconds`` later than the previous one.

    The notice reads it after the first step and after ``MEASURED_STEPS`` more.
    """

    def __init__(self, seconds):
        self.seconds, self.now = seconds, 0.0

    def __call__(self):
        self.now += self.seconds
        return self.now


def fit_silently_on_a_machine_where_each_step_takes(seconds, monkeypatch, table, **params):
    monkeypatch.setattr(training_callbacks, "_clock", SlowClock(seconds * training_callbacks.CostNotice.MEASURED_STEPS))
    settings = {**TINY, "denoiser": "mlp", "max_steps": 40, **params}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        DiffusionFeaturizer(**settings).fit(table[0])
    return [str(w.message) for w in caught if "Training the denoiser" in str(w.message)]


def test_a_training_estimated_over_a_minute_warns_once_with_its_duration(monkeypatch, table):
    messages = fit_silently_on_a_machine_where_each_step_takes(3.0, monkeypatch, table)
    assert len(messages) == 1
    assert "40 steps" in messages[0] and "about 2 minutes" in messages[0] and "verbose=1" in messages[0]
    assert "max_steps" in messages[0]


def test_a_short_training_says_nothing(monkeypatch, table):
    assert fit_silently_on_a_machine_where_each_step_takes(1.0, monkeypatch, table) == []


def test_a_verbose_training_shows_its_loss_and_keeps_the_bar(monkeypatch, table, capsys):
    assert fit_silently_on_a_machine_where_each_step_takes(3.0, monkeypatch, table, verbose=1) == []
    err = capsys.readouterr().err
    assert "training denoiser" in err and "loss=" in err
    assert "40/40" in err  # the finished bar stays on screen


@pytest.mark.parametrize(("seconds", "text"), [(30, "30 seconds"), (600, "10 minutes"), (7200, "2.0 hours")])
def test_durations_read_naturally(seconds, text):
    assert training_callbacks._duration(seconds) == text


def test_the_notice_points_at_the_users_fit_call_not_into_diffrep(monkeypatch, table):
    monkeypatch.setattr(training_callbacks, "_clock", SlowClock(3.0 * training_callbacks.CostNotice.MEASURED_STEPS))
    featurizer = DiffusionFeaturizer(**{**TINY, "denoiser": "mlp", "max_steps": 40})
    with pytest.warns(CostWarning, match="Training the denoiser") as caught:
        featurizer.fit(table[0]); line = sys._getframe().f_lineno  # noqa: E702 (the line the warning names)
    (notice,) = [w for w in caught if "Training the denoiser" in str(w.message)]
    assert (notice.filename, notice.lineno) == (__file__, line)


def test_the_notice_points_at_the_users_line_from_inside_a_pipeline(monkeypatch, table):
    monkeypatch.setattr(training, "_clock", SlowClock(3.0 * training.CostNotice.MEASURED_STEPS))
    pipeline = make_pipeline(StandardScaler(), DiffusionFeaturizer(**{**TINY, "denoiser": "mlp", "max_steps": 40}))
    with pytest.warns(CostWarning, match="Training the denoiser") as caught:
        pipeline.fit(table[0]); line = sys._getframe().f_lineno  # noqa: E702 (the line the warning names)
    (notice,) = [w for w in caught if "Training the denoiser" in str(w.message)]
    assert (notice.filename, notice.lineno) == (__file__, line)
