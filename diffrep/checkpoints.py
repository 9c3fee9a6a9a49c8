"""Training checkpoints: written atomically, read without executing code, keyed by what training depends on.

A checkpoint holds everything the training loop needs to continue exactly
where it stopped: the network, its exponential moving average, the optimizer
state, the state of the generator that draws batches, noise and timesteps, and
the loss curve so far (whose length is the step count). It holds tensors,
dicts, lists, tuples, numbers and strings only, so it is read with
``torch.load(weights_only=True)``: a checkpoint file can never run code.

Each training run has its own file in the checkpoint directory, named after a
fingerprint of the initial network, the schedule, the training data, the
generator's initial state and the training settings; the full fingerprint is
stored inside too and checked on reading. A fit on other data or with other
settings therefore never resumes a checkpoint that is not its own, and never
overwrites one either.

Files are replaced atomically (a temporary file in the same directory,
flushed and fsynced, then ``os.replace``), so a crash or a Ctrl-C while
writing leaves the previous checkpoint intact.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import tempfile
import warnings
from pathlib import Path

import torch

from .caching import fingerprint_array, fingerprint_module, fingerprint_schedule

FORMAT = "diffrep-training-checkpoint-1"
_KEYS = frozenset({"format", "fingerprint", "network", "ema", "optimizer", "generator", "loss_curve"})


def training_fingerprint(network, data, schedule, generator, settings):
    """A hash of everything the trained weights depend on.

    Parameters
    ----------
    network : torch.nn.Module
        The network before training (class, config and initial weights).
    data : ndarray
        The scaled training data.
    schedule : NoiseSchedule
    generator : torch.Generator
        The generator before training: its state stands for the training seed.
    settings : dict
        The other training settings (steps, batch size, learning rate, EMA decay).

    Returns
    -------
    fingerprint : str
        Hexadecimal digest.
    """
    parts = [
        FORMAT,
        fingerprint_module(network),
        fingerprint_schedule(schedule),
        fingerprint_array(data),
        fingerprint_array(generator.get_state().numpy()),
        repr(sorted(settings.items())),
    ]
    return hashlib.blake2b("|".join(parts).encode(), digest_size=20).hexdigest()


def atomic_save(obj, path):
    """``torch.save(obj, path)`` such that ``path`` is never left half-written.

    The object is written to a temporary file in the same directory, flushed
    and fsynced, then moved over ``path`` with ``os.replace``. If anything fails
    (a full disk, a crash, a ``KeyboardInterrupt``), the temporary file is
    removed and the previous ``path`` is untouched.

    Parameters
    ----------
    obj : object
        What to save.
    path : str or os.PathLike
        The destination; its directory is created if needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(obj, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory):
    """Make a rename in ``directory`` durable (POSIX only; elsewhere a no-op)."""
    if os.name != "posix":
        return
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


class TrainingCheckpoint:
    """The checkpoint file of one training run.

    Parameters
    ----------
    directory : str or os.PathLike
        Where checkpoints are kept; created at the first save.
    fingerprint : str
        :func:`training_fingerprint` of the run.

    Attributes
    ----------
    path : pathlib.Path
        ``directory / "diffrep-<fingerprint prefix>.pt"``.
    """

    def __init__(self, directory, fingerprint):
        self.fingerprint = fingerprint
        self.path = Path(directory) / f"diffrep-{fingerprint[:16]}.pt"

    def save(self, network, ema_network, optimizer, generator, loss_curve):
        """Atomically write the training state after ``len(loss_curve)`` steps.

        Parameters
        ----------
        network, ema_network : torch.nn.Module
        optimizer : torch.optim.Optimizer
        generator : torch.Generator
        loss_curve : list of float
        """
        state = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "network": network.state_dict(),
            "ema": ema_network.state_dict(),
            "optimizer": optimizer.state_dict(),
            "generator": generator.get_state(),
            "loss_curve": [float(value) for value in loss_curve],
        }
        atomic_save(state, self.path)

    def _read(self):
        """The saved state, or None (with a warning) when it is absent or not this run's."""
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            reason = "it holds objects other than tensors and plain containers, which could run code"
            return self._ignore(f"it cannot be read safely: {reason}")
        except Exception as exc:
            reason = f"{type(exc).__name__}: {str(exc).split('. ')[0]}"
            return self._ignore(f"it cannot be read safely ({reason}); it is truncated or corrupt")
        if not isinstance(state, dict) or set(state) != _KEYS or state["format"] != FORMAT:
            return self._ignore("it is not a diffrep training checkpoint")
        if state["fingerprint"] != self.fingerprint:
            return self._ignore("it was written for other training data or settings")
        return state

    def _ignore(self, reason):
        warnings.warn(
            f"Ignoring the checkpoint {self.path}: {reason}. Training starts from step 0 and overwrites it.",
            UserWarning,
            stacklevel=4,
        )

    def restore(self, network, ema_network, optimizer, generator, max_steps):
        """Load the saved state into the training objects, if there is one.

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
            If a checkpoint of this run exists but does not fit the training objects.
        """
        state = self._read()
        if state is None:
            return []
        loss_curve = state["loss_curve"]
        try:
            if not isinstance(loss_curve, list) or len(loss_curve) > max_steps:
                raise ValueError(f"it records {len(loss_curve)} steps of a run of {max_steps}")
            network.load_state_dict(state["network"])
            ema_network.load_state_dict(state["ema"])
            optimizer.load_state_dict(state["optimizer"])
            generator.set_state(state["generator"])
        except (ValueError, RuntimeError, KeyError, TypeError) as exc:
            raise ValueError(
                f"The checkpoint {self.path} belongs to this training run but cannot be restored ({exc}); "
                "delete it to train from scratch."
            ) from exc
        return [float(value) for value in loss_curve]


def check_checkpoint_dir(checkpoint_dir):
    """Validate the ``checkpoint_dir`` parameter: None, or a path that is not a file.

    Parameters
    ----------
    checkpoint_dir : None, str or os.PathLike

    Raises
    ------
    TypeError
        If it is neither None nor a path.
    ValueError
        If it names an existing file.
    """
    if checkpoint_dir is None:
        return
    if not isinstance(checkpoint_dir, (str, os.PathLike)):
        raise TypeError(
            f"checkpoint_dir must be None or a directory path, got {checkpoint_dir!r} "
            f"of type {type(checkpoint_dir).__name__}."
        )
    if os.path.exists(checkpoint_dir) and not os.path.isdir(checkpoint_dir):
        raise ValueError(f"checkpoint_dir={os.fspath(checkpoint_dir)!r} exists and is not a directory.")
