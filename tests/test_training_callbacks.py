"""Each training callback alone, on a run built by hand: loss reads, checkpoints, divergence, progress, cost."""

import math
import warnings

import pytest
import torch

from diffrep._engine import training, training_callbacks
from diffrep._engine.checkpoints import TrainingCheckpoint
from diffrep._engine.training_config import TrainingConfig
from diffrep._engine.training_callbacks import (
    Checkpointing,
    CostNotice,
    DivergenceCheck,
    LossHistory,
    ProgressBar,
    TrainingCallback,
    TrainingRun,
)
from diffrep.schedules import NoiseSchedule


class _Denoiser(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 3)

    def forward(self, x, t):
        return self.linear(x)


def _run(max_steps=6, loss_curve=None):
    network, ema_network = _Denoiser(), _Denoiser()
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3)
    return TrainingRun(network, ema_network, optimizer, torch.Generator().manual_seed(0), max_steps,
                       torch.device("cpu"), list(loss_curve or []))


def _losses(*values):
    return [torch.tensor(value) for value in values]


class _Recorder(TrainingCallback):
    def __init__(self):
        self.calls = []

    def on_train_begin(self, run):
        self.calls.append("begin")

    def on_step_end(self, run, step, loss):
        self.calls.append(step)

    def on_train_end(self, run):
        self.calls.append("end")


class _FakeCheckpoint:
    """Records saves; restores a given loss curve."""

    def __init__(self, restored=()):
        self.restored, self.saved = list(restored), []

    def restore(self, network, ema_network, optimizer, generator, max_steps):
        return list(self.restored)

    def save(self, network, ema_network, optimizer, generator, loss_curve):
        self.saved.append(list(loss_curve))


def test_the_base_callback_does_nothing_and_the_loop_calls_every_hook_in_order(monkeypatch):
    run = _run()
    for hook in ("on_train_begin", "on_train_end", "on_interrupt"):
        assert getattr(TrainingCallback(), hook)(run) is None
    recorder = _Recorder()
    real = training._callbacks
    monkeypatch.setattr(training, "_callbacks", lambda *args: [*real(*args), recorder])
    data = torch.randn(16, 3, generator=torch.Generator().manual_seed(0)).numpy()
    training.train_denoiser(_Denoiser(), data, NoiseSchedule(10), _config(max_steps=3), device=torch.device("cpu"))
    assert recorder.calls == ["begin", 0, 1, 2, "end"]


def _config(max_steps):
    return TrainingConfig(max_steps=max_steps, batch_size=8, learning_rate=1e-3, ema_decay=0.9, seed=0)


@pytest.mark.parametrize("read_every", [1, 4])
def test_loss_history_reads_when_due_and_after_the_last_step(read_every):
    run, history = _run(max_steps=6), LossHistory(1e-3, read_every)
    history.on_train_begin(run)
    sizes = []
    for step, loss in enumerate(_losses(1.0, 2.0, 3.0, 4.0, 5.0, 6.0)):
        history.on_step_end(run, step, loss)
        sizes.append(len(run.loss_curve))
    assert run.loss_curve == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert sizes == ([1, 2, 3, 4, 5, 6] if read_every == 1 else [0, 0, 0, 4, 4, 6])


def test_loss_history_names_the_first_diverging_step_and_keeps_what_came_before():
    run, history = _run(), LossHistory(0.5, 10)
    history.on_train_begin(run)
    for step, loss in enumerate(_losses(1.0, math.inf, math.nan)):
        history.on_step_end(run, step, loss)
    with pytest.raises(FloatingPointError, match=r"loss became inf at training step 1; .*learning_rate \(now 0.5\)"):
        history.read()
    assert run.loss_curve == [1.0]


def test_loss_history_keeps_even_non_finite_losses_on_an_interrupt():
    run, history = _run(), LossHistory(1e-3, 10)
    history.on_train_begin(run)
    for step, loss in enumerate(_losses(1.0, math.nan)):
        history.on_step_end(run, step, loss)
    history.on_interrupt(run)
    assert run.loss_curve[0] == 1.0 and math.isnan(run.loss_curve[1])


def test_checkpointing_resumes_then_saves_every_few_steps_and_after_the_last_with_the_losses_read():
    run = _run(max_steps=7)
    history, checkpoint = LossHistory(1e-3, 100), _FakeCheckpoint(restored=[0.5, 0.25])
    divergence = DivergenceCheck(1e-3, NoiseSchedule(10), torch.zeros(4, 3), 4)
    checkpointing = Checkpointing(checkpoint, 3, history, divergence)
    history.on_train_begin(run)
    checkpointing.on_train_begin(run)
    assert run.first_step == 2 and run.loss_curve == [0.5, 0.25]
    for step in range(run.first_step, run.max_steps):
        history.on_step_end(run, step, torch.tensor(float(step)))
        checkpointing.on_step_end(run, step, None)
    assert checkpoint.saved == [[0.5, 0.25, 2.0], [0.5, 0.25, 2.0, 3.0, 4.0, 5.0], [0.5, 0.25, 2.0, 3.0, 4.0, 5.0, 6.0]]


def test_checkpointing_never_saves_non_finite_weights(tmp_path):
    run = _run(max_steps=3)
    history = LossHistory(1e-3, 1)
    checkpoint = TrainingCheckpoint(tmp_path, "run")
    checkpointing = Checkpointing(checkpoint, 1, history, DivergenceCheck(1e-3, NoiseSchedule(10), torch.zeros(4, 3), 4))
    history.on_train_begin(run)
    checkpointing.on_train_begin(run)
    with torch.no_grad():
        run.ema_network.linear.weight[0, 0] = math.nan
    history.on_step_end(run, 0, torch.tensor(1.0))
    with pytest.raises(FloatingPointError, match=r"weights became NaN or infinite \(e.g. linear.weight\) at training step 0"):
        checkpointing.on_step_end(run, 0, None)
    assert not checkpoint.path.exists()


def test_the_divergence_check_refuses_a_trained_network_with_overflowing_outputs():
    run = _run()
    check = DivergenceCheck(2.0, NoiseSchedule(10), torch.full((4, 3), 1.0), 4)

    class _Huge(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.tensor(3e38))

        def forward(self, x, t):
            return x * self.scale * 10

    check.on_train_end(run)  # finite weights, finite outputs: nothing to say
    run.ema_network = _Huge()
    with pytest.raises(FloatingPointError, match=r"outputs on the training data overflow.*now 2.0"):
        check.on_train_end(run)


def test_the_divergence_check_keeps_nothing_of_non_finite_weights_on_an_interrupt():
    run = _run(loss_curve=[1.0, 2.0])
    check = DivergenceCheck(1e-3, NoiseSchedule(10), torch.zeros(4, 3), 4)
    check.on_interrupt(run)  # finite: the loop keeps the weights
    with torch.no_grad():
        run.ema_network.linear.bias[0] = math.inf
    with pytest.raises(KeyboardInterrupt, match="after 2 of 6 steps.*nothing is kept"):
        check.on_interrupt(run)


def test_the_progress_bar_counts_from_the_first_step_and_shows_the_latest_loss_read(capsys):
    run = _run(max_steps=4, loss_curve=[0.5])
    run.first_step = 1
    bar = ProgressBar(disable=False)
    bar.on_train_begin(run)
    for step in range(1, 4):
        run.loss_curve.append(0.125 * step)
        bar.on_step_end(run, step, None)
    bar.on_train_end(run)
    err = capsys.readouterr().err
    assert "training denoiser" in err and "4/4" in err and "loss=0.3750" in err


def test_a_disabled_progress_bar_prints_nothing(capsys):
    run = _run(max_steps=2)
    bar = ProgressBar(disable=True)
    bar.on_train_begin(run)
    bar.on_step_end(run, 0, None)
    bar.on_train_end(run)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(("seconds_per_step", "warns"), [(3.0, True), (1.0, False)])
def test_the_cost_notice_estimates_the_remaining_steps_of_the_run(monkeypatch, seconds_per_step, warns):
    readings = iter([0.0, seconds_per_step * CostNotice.MEASURED_STEPS])
    monkeypatch.setattr(training_callbacks, "_clock", lambda: next(readings))
    run = _run(max_steps=50, loss_curve=[1.0] * 10)
    run.first_step = 10  # 40 steps left: 2 minutes at 3 s a step
    notice = CostNotice()
    notice.on_train_begin(run)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(10, 10 + 1 + CostNotice.MEASURED_STEPS + 3):
            notice.on_step_end(run, step, None)
    messages = [str(w.message) for w in caught]
    if warns:
        assert len(messages) == 1 and "40 steps on cpu" in messages[0] and "about 2 minutes" in messages[0]
    else:
        assert messages == []
