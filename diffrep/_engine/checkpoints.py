"""Training checkpoints: written atomically, verified before resuming, keyed by what training depends on.

A checkpoint holds everything the training loop needs to continue exactly
where it stopped: the network, its exponential moving average, the optimizer
state, the state of the generator that draws batches, noise and timesteps, and
the loss curve so far (whose length is the step count).

Nothing damaged or foreign is ever resumed. A file starts with a format line
and the SHA-256 of the rest, checked before anything is unpickled; the rest
holds tensors, dicts, lists, tuples, numbers and strings only and is read with
``torch.load(weights_only=True)``, so a checkpoint file can never run code.
Before resuming, every tensor must be finite and the loss curve must be as long
as the optimizer's own step count. A checkpoint that fails any check is ignored
with a warning, and training starts from step 0 (and overwrites it).

Each training trajectory has its own file in the checkpoint directory, named
after its :class:`~.training_config.TrainingConfig` trajectory fingerprint (the
initial network, the schedule, the training data, the seed and the training
settings other than ``max_steps``); the full fingerprint is stored inside too
and checked on reading. A fit on other data or with other settings therefore
never resumes a checkpoint that is not its own, and never overwrites one
either. Runs that differ only in ``max_steps`` share a file: a longer run
continues where a shorter one stopped (a warm start: the first steps of a
longer run are the shorter run, bit for bit), and a shorter run that finds a
longer run's checkpoint starts over.

Files are replaced atomically (a temporary file in the same directory,
flushed and fsynced, then ``os.replace``), so a crash or a Ctrl-C while
writing leaves the previous checkpoint intact; the temporary files of a
killed process are removed when the same run starts again. If a checkpoint
cannot be written (a full disk, a read-only directory), training goes on
without checkpoints, with a warning that names the directory.
"""

from __future__ import annotations

import io
import os
import pickle
import warnings
from pathlib import Path

import torch

from .caller import user_stacklevel
from .notices import CheckpointWarning
from .files import atomic_write, remove_stray_temporaries, sealed, unsealed
from .finiteness import non_finite_tensors

FORMAT = "diffrep-training-checkpoint-2"
_MAGIC = FORMAT.encode() + b"\n"
_KEYS = frozenset({"format", "fingerprint", "network", "ema", "optimizer", "generator", "loss_curve"})


def read_checkpoint(path):
    """The training state stored in a checkpoint file, verified but not yet checked for its run.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    state : dict
        With the keys ``format``, ``fingerprint``, ``network``, ``ema``,
        ``optimizer``, ``generator`` and ``loss_curve``.

    Raises
    ------
    ValueError
        If the file is not a checkpoint of this format, is damaged (its
        checksum differs), holds anything that unpickling would need code for,
        or lacks an entry. The message says which, as a clause ("it ...").
    """
    payload = unsealed(_MAGIC, Path(path).read_bytes())
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(
            "it holds objects other than tensors and plain containers, which could run code"
        ) from None
    except Exception as exc:
        raise ValueError(f"it cannot be read ({type(exc).__name__}: {str(exc).split('. ')[0]})") from None
    if not isinstance(state, dict) or set(state) != _KEYS or state["format"] != FORMAT:
        raise ValueError("it is not a diffrep training checkpoint")
    return state


def _tensors(value):
    """Every tensor inside nested dicts, lists and tuples."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)


def _check_resumable(state, max_steps):
    """Raise ``ValueError`` (a clause) unless the state is finite and consistent with its step count."""
    loss_curve = state["loss_curve"]
    if not isinstance(loss_curve, list) or not all(isinstance(value, float) for value in loss_curve):
        raise ValueError("its loss curve is not a list of numbers")
    if len(loss_curve) > max_steps:
        raise ValueError(f"it is further along ({len(loss_curve)} steps) than this run of max_steps={max_steps}")
    weights = (state["network"], state["ema"], state["optimizer"])
    if non_finite_tensors(enumerate(_tensors(weights))):
        raise ValueError("it holds NaN or infinite weights or optimizer state")
    optimizer_state = state["optimizer"].get("state", {}) if isinstance(state["optimizer"], dict) else {}
    optimizer_steps = {int(entry["step"]) for entry in optimizer_state.values() if "step" in entry}
    if optimizer_steps and optimizer_steps != {len(loss_curve)}:
        raise ValueError(
            f"its loss curve has {len(loss_curve)} steps but its optimizer ran {sorted(optimizer_steps)}"
        )


class TrainingCheckpoint:
    """The checkpoint file of one training run.

    Parameters
    ----------
    directory : str or os.PathLike
        Where checkpoints are kept; created at the first save.
    fingerprint : str
        The run's :attr:`TrainingConfig.trajectory <.training_config.TrainingConfig>`:
        runs that differ only in ``max_steps`` share a checkpoint, and a longer
        run resumes a shorter one (warm start).

    Attributes
    ----------
    path : pathlib.Path
        ``directory / "diffrep-<fingerprint prefix>.pt"``.
    writable : bool
        False once a write failed; no further write is tried in this run.
    """

    def __init__(self, directory, fingerprint):
        self.fingerprint = fingerprint
        self.path = Path(directory) / f"diffrep-{fingerprint[:16]}.pt"
        self.writable = True

    def save(self, network, ema_network, optimizer, generator, loss_curve):
        """Atomically write the training state after ``len(loss_curve)`` steps.

        A write that fails with an ``OSError`` (a full disk, no permission)
        warns once, naming the directory, and turns checkpointing off for the
        rest of the run; the training in memory goes on.

        Parameters
        ----------
        network, ema_network : torch.nn.Module
        optimizer : torch.optim.Optimizer
        generator : torch.Generator
        loss_curve : list of float
        """
        if not self.writable:
            return
        state = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "network": network.state_dict(),
            "ema": ema_network.state_dict(),
            "optimizer": optimizer.state_dict(),
            "generator": generator.get_state(),
            "loss_curve": [float(value) for value in loss_curve],
        }
        buffer = io.BytesIO()
        torch.save(state, buffer)
        try:
            atomic_write(self.path, sealed(_MAGIC, buffer.getvalue()))
        except OSError as exc:
            self.writable = False
            warnings.warn(
                f"Cannot write training checkpoints to checkpoint_dir={os.fspath(self.path.parent)!r} "
                f"({exc.strerror or exc}); training goes on without checkpoints after step {len(loss_curve)}.",
                CheckpointWarning,
                stacklevel=user_stacklevel(),
            )

    def _read(self, max_steps):
        """The saved state, or None (with a warning) when it is absent, not this run's or not resumable."""
        if not self.path.is_file():
            return None
        try:
            state = read_checkpoint(self.path)
            if state["fingerprint"] != self.fingerprint:
                raise ValueError("it was written for other training data or settings")
            _check_resumable(state, max_steps)
        except (OSError, ValueError) as reason:
            warnings.warn(
                f"Ignoring the checkpoint {self.path}: {reason}. Training starts from step 0 and overwrites it.",
                CheckpointWarning,
                stacklevel=user_stacklevel(),
            )
            return None
        return state

    def restore(self, network, ema_network, optimizer, generator, max_steps):
        """Load the saved state into the training objects, if there is a sound one.

        Stray temporary files of this run's killed writes are removed first.

        Parameters
        ----------
        network, ema_network : torch.nn.Module
        optimizer : torch.optim.Optimizer
        generator : torch.Generator
        max_steps : int
            The run's step count; a checkpoint cannot be further along.

        Returns
        -------
        loss_curve : list of float
            The loss of every step already done; empty when training starts afresh.

        Raises
        ------
        ValueError
            If a sound checkpoint of this run exists but does not fit the training objects.
        """
        remove_stray_temporaries(self.path)
        state = self._read(max_steps)
        if state is None:
            return []
        try:
            network.load_state_dict(state["network"])
            ema_network.load_state_dict(state["ema"])
            optimizer.load_state_dict(state["optimizer"])
            generator.set_state(state["generator"])
        except (ValueError, RuntimeError, KeyError, TypeError) as exc:
            raise ValueError(
                f"The checkpoint {self.path} belongs to this training run but cannot be restored ({exc}); "
                "delete it to train from scratch."
            ) from exc
        return list(state["loss_curve"])


def check_checkpoint_dir(checkpoint_dir):
    """Raise ``ValueError`` when ``checkpoint_dir`` names an existing file (its type is a constraint)."""
    if checkpoint_dir is not None and os.path.exists(checkpoint_dir) and not os.path.isdir(checkpoint_dir):
        raise ValueError(f"checkpoint_dir={os.fspath(checkpoint_dir)!r} exists and is not a directory.")
