"""DiffusionFeaturizer: the scikit-learn face of a diffusion denoiser."""

from __future__ import annotations

import copy
import functools
import numbers
import os
import warnings
from numbers import Real
from typing import TYPE_CHECKING

import joblib
import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._engine.sklearn_compat import Interval, StrOptions
from ._engine.sklearn_compat import check_feature_names_in as _check_feature_names_in
from ._engine.sklearn_compat import fit_context as _fit_context
from ._engine.device import available_or_cpu, resolve_device
from ._engine.persistence import CONFIG_NAME, read_featurizer_files, staged_save, write_featurizer_files
from ._engine.validation import (
    DATA_FORMATS,
    Count,
    check_finite_features,
    check_image_shape,
    check_layers,
    check_pooling_grid,
    check_timesteps,
)
from ._engine.cache import cache_location, fitted_denoiser
from ._engine.caller import user_stacklevel
from ._engine.notices import CacheWarning
from ._engine.checkpoints import check_checkpoint_dir
from ._engine.extraction import POOLINGS, PRECISIONS, FeatureExtractor, feature_labels
from ._engine.inputs import ArrayInput, ImageFileInput, PipelineImageInput, image_paths
from ._engine.reuse import extracted_once, is_sharing, trained_once
from ._engine.scaling import SCALINGS, DataScaler
from ._engine.training_config import TrainingConfig, random_device_type
from .denoisers.description import describe_denoiser, reads_images
from .denoisers.factory import BUILT_IN, load_source, obtain_denoiser
from .denoisers.loading import load_denoiser, save_denoiser
from .denoisers.unet import default_max_steps
from .schedules import PREDICTION_TYPES
from ._engine.training import TrainingInterrupted, train_denoiser

if TYPE_CHECKING:
    from collections.abc import Sequence
    from ._engine.type_aliases import PathLike, RandomStateLike, TimestepsLike


# The largest learning rate the float32 optimizer can hold.
_FLOAT32_MAX = float(np.finfo(np.float32).max)
# Each (sample, timestep) pair runs its draws in one forward pass; past this many the
# average's noise is below 3% of one draw's, and the cost (and memory) only grows.
MAX_NOISE_DRAWS = 1024


class DiffusionFeaturizer(TransformerMixin, BaseEstimator):
    """Features from a diffusion denoiser's activations at chosen noise levels.

    ``fit`` trains (or loads) a denoiser of ``X`` without labels. ``transform``
    adds to every sample, at each of ``timesteps``, Gaussian noise of its own
    (independent of every other sample's, timestep's and draw's), runs the
    denoiser while capturing the named ``layers``, pools them over space and
    concatenates the blocks, timestep-major, then layer.

    The noise is deterministic: it is derived from ``random_state``, the
    sample's bytes after scaling (for a pretrained pipeline: the RGB image
    resized to the pipeline's size), the timestep and the draw index (a
    counter-based generator; see the user guide). A sample therefore gets the
    same noise whatever the batch, order or subset it comes in, and its
    features agree to float32 rounding (the network's kernels depend on the
    batch's shape: at most 8 float32 epsilons of the largest feature in
    ``benchmarks/batch_invariance.py``); identical rows get identical noise.

    Timesteps are indices into the DDPM training schedule: **larger is noisier**.
    The equivalent noise level ``sigma = sqrt((1 - abar_t) / abar_t)`` of each is
    in ``sigmas_``. The paper finds the best features at a moderate noise level;
    on our digits with the default grid features accuracy is level from t=0 to
    t=50 (8x8) or t=100 (28x28) and falls beyond (see the user guide).

    Parameters
    ----------
    timesteps : int or sequence of int, default=(50,)
        Schedule indices to extract features at, ``0 <= t < num_train_timesteps``.
    layers : str, sequence of str or None, default=None
        Named submodules of the denoiser to capture (``"mid_block"``,
        ``"up_blocks.1"``, ``"blocks.1"`` ...), or ``"x0"``: the denoiser's
        estimate of the clean input. None takes the backbone's default:
        ``"up_blocks.0"`` for a UNet (its first decoder block, the best layer
        measured on digits, see the user guide), the middle residual block for
        the MLP.
    pooling : {"mean", "max", "none"}, default="max"
        How each captured map is reduced: ``"mean"`` or ``"max"`` of every
        channel within each cell of ``pooling_grid``, or ``"none"``: every
        position kept (flattened).
    pooling_grid : int or tuple of (int, int), default=4
        Cells per side of the grid that ``"mean"`` and ``"max"`` pool each map
        onto (adaptive pooling, as ``torch.nn.functional.adaptive_avg_pool2d``;
        a map smaller than the grid keeps its own size): ``1`` gives one number
        per channel, ``4`` sixteen, which keep where in the image a pattern is.
        A token sequence that is not a square patch grid is pooled to
        ``rows * columns`` cells; MLP features have no cells. Ignored with
        ``pooling="none"``. Features per layer are ``channels x cells``: the
        user guide gives what each choice costs and gains.
    denoiser : {"auto", "unet", "mlp"}, str, os.PathLike or torch.nn.Module, default="auto"
        ``"auto"``: a diffusers ``UNet2DModel`` for images (``image_shape`` given,
        or 3-D/4-D ``X``), an MLP for tables. A string that is not a built-in name
        is a local diffusers model or pipeline directory (``unet/`` + ``scheduler/``)
        or a hub id; its scheduler config then defines the schedule. A pipeline
        saved whole (with ``model_index.json``: ``DDPMPipeline``,
        ``DDIMPipeline``, ``DiTPipeline``, ``StableDiffusionPipeline``, e.g.
        ``"facebook/DiT-XL-2-256"``) takes RGB images of any size or image
        files instead (see ``X`` in ``fit``, and :mod:`diffrep.denoisers.pipelines`),
        as does a :class:`~diffrep.denoisers.pipelines.PipelineDenoiser` module.
        A module with a ``(x_t, t)`` forward is deep-copied, never modified.
    image_shape : tuple of int or None, default=None
        ``(C, H, W)`` of images passed flattened as 2-D ``X``, always channels
        first (a shape that reads as ``(H, W, C)`` is refused with a suggestion).
    data_format : {"auto", "channels_first", "channels_last"}, default="auto"
        Layout of image arrays: ``(n, C, H, W)`` or ``(n, H, W, C)`` (as PIL and
        OpenCV give them); for 2-D ``X`` with ``image_shape``, the order of its
        columns. ``"auto"`` reads 4-D ``X`` as channels-first when its second
        axis is smaller than the two others, as channels-last when its last axis
        is 1, 3 or 4 and smaller than the two others, and refuses any other
        shape with an error that asks for ``data_format``; flattened images are
        then taken as channels-first. ``transform`` reads ``X`` in the layout
        ``fit`` used (``data_format_``). A pretrained pipeline finds the
        channel axis (of 3 or 1 values) of its images itself.
    n_noise_draws : int, default=1
        Independent noise draws per sample and timestep; features are averaged
        over them (as DIFT does), which lowers the variance the noise adds.
        At most 1024: the draws of one sample and timestep run in one forward pass.
    num_train_timesteps : int, default=1000
        Length of the DDPM schedule (unless the denoiser brings its own).
    beta_schedule : str, default="linear"
        diffusers beta schedule (unless the denoiser brings its own).
    prediction_type : {"epsilon", "sample", "v_prediction"}, default="epsilon"
        What a trained denoiser predicts (unless the denoiser declares its own).
    scaling : {"auto", "minmax", "standard", "none"}, default="auto"
        Data scaling learned in ``fit``: ``"auto"`` maps images to [-1, 1] from
        the training range and standardizes table columns. A pretrained
        pipeline needs ``"auto"``: it reads RGB values in [0, 1] as it was trained.
    train_denoiser : {"auto"} or bool, default="auto"
        Whether ``fit`` trains the denoiser. ``"auto"`` trains a built-in
        backbone and uses a loaded or passed-in denoiser as is; ``True``
        fine-tunes those too; ``False`` keeps a built-in backbone at its random
        initialization (a baseline).
    model_width : int or None, default=None
        Width of a built-in backbone: UNet channels of the first level, doubled
        at each deeper level (default 32 for images up to 16x16 pixels, 16 for
        larger ones, whose steps cost more), or MLP hidden width (default 256).
    max_steps : int or None, default=None
        Training steps. None sizes the budget for the data: 2,000 steps for
        tables and images up to 16x16 pixels, 600 for larger images (about 4
        and 8 CPU-minutes on 8x8 and 28x28 images on one core; the user guide
        has the accuracy each budget bought).
    batch_size : int, default=128
        Batch size of training, and number of network inputs per forward pass
        of feature extraction, where each (sample, timestep, noise draw) is one
        input: several timesteps of a sample share a pass. An out-of-memory
        error on the device halves it during extraction, with a warning.
    learning_rate : float, default=1e-3
        AdamW learning rate.
    ema_decay : float, default=0.999
        Decay of the exponential moving average of the weights used for features.
    device : str, default="auto"
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``.
    precision : {"float32", "bfloat16"}, default="float32"
        Arithmetic of feature extraction. ``"bfloat16"`` runs the denoiser under
        bfloat16 autocast (channels-last on CUDA): faster on recent GPUs, with
        features within about 1% of the float32 ones. Training stays float32.
    verbose : int, default=0
        0 is silent, except for one warning when a training is estimated
        (after a few steps) to take more than a minute; 1 or more shows
        progress bars for training (with the loss) and extraction.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the training batches and noise, and the
        noise of feature extraction. The same value gives identical features.
    memory : str, os.PathLike, joblib.Memory or None, default=None
        Cache of trained denoisers, as in ``Pipeline(memory=...)``: a directory
        or a ``joblib.Memory``; None caches nothing. The key covers what training
        depends on only (the initial weights, the schedule, the scaled training
        data, ``max_steps``, ``batch_size``, ``learning_rate``, ``ema_decay`` and
        the seed drawn from ``random_state``), so clones that differ in
        ``timesteps``, ``layers``, ``pooling``, ``n_noise_draws``, ``device`` or
        ``verbose`` train once, e.g. in a grid search. Fits repeat, and hit the
        cache, only with an int ``random_state``; with any other ``random_state``
        nothing is cached and ``fit`` warns. A directory shared between
        processes or machines shares the cache; see ``docs/scaling_out.rst`` for
        GPU clusters (one GPU per worker). Entries are safetensors weights and
        JSON behind a checksum, under ``<memory>/diffrep-trained/``: reading
        them runs no code, and a damaged entry is retrained with a warning.
    checkpoint_dir : str, os.PathLike or None, default=None
        Directory of training checkpoints; None writes none. Every
        ``checkpoint_every`` steps, and at the last step, the network, its EMA,
        the optimizer, the random generator and the loss curve are written
        atomically to one file per training run, named after a fingerprint of
        the initial weights, the scaled data, the schedule, the seed and the
        training settings other than ``max_steps``. A fit that finds its own
        checkpoint there resumes from it and ends with the same weights as an
        uninterrupted fit. That includes a warm start: a fit with a larger
        ``max_steps`` continues a shorter run's checkpoint (training longer, or
        ``HalvingGridSearchCV(resource="featurizer__max_steps")``, reuses the
        steps done); a shorter run never resumes a longer one's. A
        checkpoint of other data or settings is never resumed, nor is one that
        fails its checksum or holds non-finite values (it is ignored with a
        warning and overwritten). If a checkpoint cannot be written (a full
        disk), the fit warns, naming the directory, and trains on without
        checkpoints. If the loss or the weights diverge the fit raises and the
        featurizer is left unfitted (the finite checkpoints already written
        stay on disk).
    checkpoint_every : int, default=500
        Training steps between checkpoints.
    condition : int, str or None, default=None
        Conditioning of a pretrained conditional pipeline: a class id of a
        ``DiTPipeline`` (None: its null class, the unconditional embedding), or
        a prompt of a Stable Diffusion pipeline (None: the empty prompt, as
        DIFT uses). Must be None for any other denoiser.

    Attributes
    ----------
    n_features_in_ : int
        Number of input features (pixels for images, also when ``fit`` read
        them from files; for a pretrained pipeline, values per image of the
        ``fit`` input, 1 for file paths, though images of any size are taken).
    feature_names_in_ : ndarray of str
        Column names of a DataFrame ``X``; only defined for such input.
    sample_shape_ : tuple of int
        Shape of one sample as the denoiser sees it: ``(C, H, W)`` or ``(n_features,)``.
    data_format_ : {"channels_first", "channels_last"} or None
        The layout ``X`` was read in (and ``transform`` reads it in); None for
        tables and pretrained pipelines.
    network_ : torch.nn.Module
        The denoiser used for features (the EMA weights after training), on ``device_``.
    schedule_ : NoiseSchedule
        The noise schedule of the denoiser.
    denoiser_description_ : DenoiserDescription
        What ``fit`` resolved about the denoiser, once: its schedule and
        prediction type, default layers, whether its activations are patch
        tokens, the input scaling ``scaling="auto"`` picks, whether it reads
        images itself (see :mod:`diffrep.denoisers.description`).
    timesteps_ : tuple of int
        Validated ``timesteps``.
    sigmas_ : ndarray of shape (n_timesteps,)
        Noise level ``sqrt((1 - abar_t) / abar_t)`` of each timestep.
    layers_ : tuple of str
        The captured layers.
    feature_info_ : dict
        For each layer: the ``shape``, ``channels`` and ``spatial`` size of its
        activation, the ``cells`` each channel is pooled to (``(1, 1)`` for
        one number per channel, ``(4, 4)`` for a 4x4 grid, the spatial size
        itself with ``pooling="none"``, ``()`` for MLP features) and the
        number of features it gives per timestep, ``n_features = channels x
        cells``.
    input_ : ArrayInput, ImageFileInput or PipelineImageInput
        The input adapter fitted in ``fit`` (from ``diffrep._engine.inputs``):
        it reads, validates and scales ``X`` for ``transform`` and keys each
        sample's noise. Arrays and tables, image file paths given to ``fit``,
        or images for a pretrained pipeline.
    scaler_ : DataScaler or None
        The data scaling learned in ``fit`` (held by ``input_``); None for a
        pretrained pipeline.
    noise_seed_ : int
        Seed of the per-sample extraction noise, drawn from ``random_state``.
    device_ : torch.device
        The device the denoiser runs on.
    loss_curve_ : list of float
        Training loss per step (empty when nothing was trained).
    n_steps_ : int
        Number of training steps run, resumed ones included; fewer than
        ``max_steps`` when a ``KeyboardInterrupt`` (Ctrl-C) stopped training:
        the featurizer then keeps the weights learned so far and is usable,
        and ``fit`` re-raises the interrupt, so that a grid search or a script
        stops too. A partial training never enters the ``memory`` cache. A
        Ctrl-C after training stopped aborts the fit.

    reused_training_ : bool
        True when this fit trained nothing because the trained weights came
        from the ``memory`` cache or from an equal training earlier in the
        same study (see :func:`~diffrep.label_noise_study`); False when it
        trained, or when it did not train at all (``n_steps_ == 0``).
        :meth:`from_pretrained` sets it True: the saved weights are reused.

    See Also
    --------
    diffrep.schedules.NoiseSchedule : Timestep, alpha-bar and sigma conversions.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from diffrep import DiffusionFeaturizer
    >>> X, y = load_digits(return_X_y=True)
    >>> feat = DiffusionFeaturizer(timesteps=(25, 50), image_shape=(1, 8, 8),
    ...                            max_steps=5, random_state=0)
    >>> feat.fit_transform(X[:100]).shape
    (100, 128)
    >>> feat.get_feature_names_out()[:2].tolist()
    ['t25__up_blocks.0__0', 't25__up_blocks.0__1']
    """

    _parameter_constraints: dict = {
        "timesteps": [Count(0), "array-like"],
        "layers": [str, "array-like", None],
        "pooling": [StrOptions(set(POOLINGS))],
        "pooling_grid": [Count(1), "array-like"],
        "denoiser": [StrOptions(set(BUILT_IN)), str, os.PathLike, torch.nn.Module],
        "image_shape": ["array-like", None],
        "data_format": [StrOptions(set(DATA_FORMATS))],
        "n_noise_draws": [Count(1, MAX_NOISE_DRAWS)],
        "num_train_timesteps": [Count(1)],
        "beta_schedule": [str],
        "prediction_type": [StrOptions(set(PREDICTION_TYPES))],
        "scaling": [StrOptions(set(SCALINGS))],
        "train_denoiser": [StrOptions({"auto"}), "boolean"],
        "model_width": [Count(1), None],
        "max_steps": [Count(0), None],
        "batch_size": [Count(1)],
        "learning_rate": [Interval(Real, 0, _FLOAT32_MAX, closed="right")],
        "ema_decay": [Interval(Real, 0, 1, closed="both")],
        "device": [str, torch.device],
        "precision": [StrOptions(set(PRECISIONS))],
        "verbose": [Count(0)],
        "random_state": ["random_state"],
        "memory": [str, os.PathLike, joblib.Memory, None],
        "checkpoint_dir": [str, os.PathLike, None],
        "checkpoint_every": [Count(1)],
        "condition": [Interval(numbers.Integral, 0, None, closed="left"), str, None],
    }

    def __init__(
        self,
        timesteps: TimestepsLike = (50,),
        layers: str | Sequence[str] | None = None,
        pooling: str = "max",
        pooling_grid: int | tuple[int, int] = 4,
        denoiser: str | PathLike | torch.nn.Module = "auto",
        image_shape: tuple[int, ...] | None = None,
        data_format: str = "auto",
        n_noise_draws: int = 1,
        num_train_timesteps: int = 1000,
        beta_schedule: str = "linear",
        prediction_type: str = "epsilon",
        scaling: str = "auto",
        train_denoiser: str | bool = "auto",
        model_width: int | None = None,
        max_steps: int | None = None,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        ema_decay: float = 0.999,
        device: str = "auto",
        precision: str = "float32",
        verbose: int = 0,
        random_state: RandomStateLike = None,
        memory: PathLike | joblib.Memory | None = None,
        checkpoint_dir: PathLike | None = None,
        checkpoint_every: int = 500,
        condition: int | str | None = None,
    ):
        self.timesteps = timesteps
        self.layers = layers
        self.pooling = pooling
        self.pooling_grid = pooling_grid
        self.denoiser = denoiser
        self.image_shape = image_shape
        self.data_format = data_format
        self.n_noise_draws = n_noise_draws
        self.num_train_timesteps = num_train_timesteps
        self.beta_schedule = beta_schedule
        self.prediction_type = prediction_type
        self.scaling = scaling
        self.train_denoiser = train_denoiser
        self.model_width = model_width
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.ema_decay = ema_decay
        self.device = device
        self.precision = precision
        self.verbose = verbose
        self.random_state = random_state
        self.memory = memory
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.condition = condition

    # --------------------------------------------------------------- fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train (or load) the denoiser on ``X``; labels are ignored.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n, H, W) or (n, C, H, W)
            Training data, or image file paths: a list, a 1-D array of str or
            ``os.PathLike``, a pandas Series or a one-column DataFrame. For a
            self-trained denoiser files are read in 8-bit units (``[0, 255]``,
            exactly the numbers a uint8 array of them holds, so they give the
            same features as that array) into the network's image shape:
            ``image_shape`` when given, else the files' most common size and
            the channels they hold (grey when every file's colour channels
            are equal, else RGB; alpha only when ``image_shape`` asks for 4
            channels). For a pretrained pipeline: RGB images of any size,
            ``(n, 3, H, W)`` or ``(n, H, W, 3)``, floats in [0, 1] or 8-bit
            integers, or file paths (read as RGB in [0, 1], batch by batch).
            Both bring an image of other channels or size to the network by
            one rule, :func:`diffrep.images.conform_images`: the centre
            cropped to the target's aspect ratio and resized (bilinear,
            antialiased), grey repeated to RGB, RGB made grey by its luma.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : DiffusionFeaturizer
            The fitted featurizer.
        """
        vars(self).pop("feature_info_", None)  # unfitted until this fit completes
        check_checkpoint_dir(self.checkpoint_dir)
        check_pooling_grid(self.pooling_grid)
        init_seed, train_seed, noise_seed = check_random_state(self.random_state).randint(
            np.iinfo(np.int32).max, size=3
        )
        network, schedule, built_in, self.input_, X_2d = self._obtain(X, init_seed)
        self.sample_shape_, self.data_format_ = self.input_.sample_shape, self.input_.data_format
        description = self._describe(network, schedule)
        schedule = description.schedule
        self.timesteps_ = check_timesteps(self.timesteps, schedule.num_train_timesteps)
        self.layers_ = check_layers(self.layers, network, description.default_layers)
        scaling = description.input_scaling if self.scaling == "auto" else self.scaling
        self.scaler_ = self.input_.fit_scaling(scaling, X_2d)
        self.device_ = resolve_device(self.device)
        train = built_in if self.train_denoiser == "auto" else self.train_denoiser
        self.loss_curve_, self.reused_training_, interrupted = [], False, None
        max_steps = default_max_steps(self.sample_shape_) if self.max_steps is None else self.max_steps
        if train and max_steps > 0:
            network, self.loss_curve_, interrupted = self._train(
                network, schedule, self.input_.scaled(X_2d), train_seed, max_steps
            )
        self.n_steps_ = len(self.loss_curve_)
        self.network_ = network.to(self.device_).eval().requires_grad_(False)
        self.schedule_ = schedule
        self.sigmas_ = schedule.sigmas(self.timesteps_)
        self.noise_seed_ = int(noise_seed)
        self.denoiser_description_ = description
        self.feature_info_ = self._extractor().describe(self.sample_shape_, self.timesteps_[0])
        if interrupted is not None:
            raise interrupted
        return self

    def _describe(self, network, schedule):
        """The denoiser's description, resolved against this featurizer's parameters."""
        return describe_denoiser(
            network, schedule, self.sample_shape_, num_train_timesteps=self.num_train_timesteps,
            beta_schedule=self.beta_schedule, prediction_type=self.prediction_type,
        )

    def _obtain(self, X, seed):
        """The denoiser, its schedule, whether it is built in, the input adapter fitted on ``X``, and ``X`` read by it.

        The adapter sets ``n_features_in_`` (and ``feature_names_in_``).
        """
        loaded = load_source(self.denoiser)
        pipeline = self.denoiser if loaded is None else loaded[0]
        if reads_images(pipeline):
            if self.train_denoiser is True or self.scaling != "auto":
                raise ValueError(
                    "a pretrained pipeline is used as it is, on RGB images in [0, 1]: train_denoiser must be "
                    f"'auto' or False and scaling 'auto', got train_denoiser={self.train_denoiser!r} and "
                    f"scaling={self.scaling!r}."
                )
            network = (copy.deepcopy(pipeline) if loaded is None else pipeline).conditioned(self.condition)
            adapter = PipelineImageInput(network.image_size, network.sample_shape)
            return network, network.noise_schedule, False, adapter, adapter.fit(self, X)
        if self.condition is not None:
            raise ValueError(
                f"condition applies to pretrained DiT (a class id) and Stable Diffusion (a prompt) pipelines; "
                f"it must be None for denoiser={self.denoiser!r}, got {self.condition!r}."
            )
        image_shape = None if self.image_shape is None else check_image_shape(self.image_shape, self.data_format)
        adapter = (ArrayInput if image_paths(X) is None else ImageFileInput)(image_shape, self.data_format)
        X_2d = adapter.fit(self, X)
        network, schedule, built_in = obtain_denoiser(
            self.denoiser, adapter.sample_shape, self.model_width, seed, loaded=loaded
        )
        return network, schedule, built_in, adapter, X_2d

    def _train(self, network, schedule, data, seed, max_steps):
        """Train ``network`` on scaled ``data`` for ``max_steps`` once: through the study's reuse and the ``memory`` cache.

        Returns the trained network, its loss curve and None; after a Ctrl-C,
        the weights and losses of the completed steps and the
        ``TrainingInterrupted`` that ``fit`` raises once the featurizer is
        usable with them.
        """
        memory = self._cache()
        config = TrainingConfig.create(
            network,
            schedule,
            data,
            fingerprinted=cache_location(memory) is not None or self.checkpoint_dir is not None or is_sharing(),
            max_steps=max_steps,
            batch_size=self.batch_size,
            learning_rate=float(self.learning_rate),
            ema_decay=float(self.ema_decay),
            seed=int(seed),
            random_device=random_device_type(self.device_),
        )
        trainings = []

        def train_network():
            trainings.append(config.fingerprint)
            return train_denoiser(
                network,
                data,
                schedule,
                config,
                device=self.device_,
                verbose=self.verbose,
                checkpoint_dir=self.checkpoint_dir,
                checkpoint_every=self.checkpoint_every,
            )

        try:
            trained, loss_curve = trained_once(
                config.fingerprint, functools.partial(fitted_denoiser, memory, config, network, train_network)
            )
        except TrainingInterrupted as interrupted:
            self.reused_training_ = False
            return interrupted.network, interrupted.loss_curve, interrupted
        self.reused_training_ = not trainings
        return trained, loss_curve, None

    def _cache(self):
        """``memory``, or None with a warning when ``random_state`` gives no repeatable seed."""
        if self.memory is None or isinstance(self.random_state, numbers.Integral):
            return self.memory
        warnings.warn(
            f"memory={self.memory!r} caches nothing: with random_state={self.random_state!r} every fit draws "
            "another training seed, so no fit could reuse a cached denoiser. Pass an int random_state to "
            "cache trained denoisers.",
            CacheWarning,
            stacklevel=user_stacklevel(),
        )
        return None

    # ------------------------------------------------------------- transform
    def _extractor(self):
        return FeatureExtractor(
            self.network_, self.schedule_, self.noise_seed_, self.n_noise_draws, self.layers_, self.pooling,
            self.device_,
            grid=check_pooling_grid(self.pooling_grid),
            precision=self.precision,
            token_activations=self.denoiser_description_.token_activations,
        )

    def _prepare(self, batch):
        """One batch of :meth:`_read` output as the samples the denoiser sees (``input_.prepare``)."""
        return self.input_.prepare(batch, self.network_, self.device_, self.precision)

    def _read(self, X):
        """``X`` validated by the fitted input adapter, not yet scaled (extraction prepares it batch by batch)."""
        check_is_fitted(self)
        return self.input_.read(self, X)

    def transform(self, X):
        """Pooled denoiser features of ``X`` at every fitted timestep.

        Deterministic: the same sample gives the same features whatever the
        batch it is in or the order of the samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n, H, W) or (n, C, H, W)
            Data of the same shape as in ``fit``, or image file paths (of
            any size, converted to the fitted image shape as ``fit``
            describes) when ``fit`` read images; for a pretrained pipeline,
            RGB images of any size or image file paths, as in ``fit``.
            Images whose largest value is more than ten times larger or
            smaller than the largest ``fit`` read (floats in [0, 1] after
            8-bit images) give an ``InputWarning``.

        Returns
        -------
        features : ndarray of float32, shape (n_samples, n_features_out)
            Blocks ordered timestep-major, then layer; see ``get_feature_names_out``.
        """
        check_is_fitted(self)
        return self.extract(X, self.timesteps_)

    def extract(self, X, timesteps):
        """Features at any timesteps of the fitted denoiser's schedule.

        Lets one fitted featurizer serve other noise levels without refitting
        (the ``timesteps`` parameter only sets what ``transform`` returns).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n, H, W) or (n, C, H, W)
            Data of the same shape as in ``fit``.
        timesteps : int or sequence of int
            Schedule indices, larger = noisier.

        Returns
        -------
        features : ndarray of float32, shape (n_samples, n_timesteps * width)

        Raises
        ------
        ValueError
            If some features are NaN or infinite (inputs far outside the
            training range overflow the denoiser).
        """
        data = self._read(X)
        timesteps = check_timesteps(timesteps, self.schedule_.num_train_timesteps)
        extract = functools.partial(
            self._extractor().transform, data, batch_size=self.batch_size, verbose=self.verbose, prepare=self._prepare
        )
        input_key = self.input_.reuse_key()
        if input_key is None:  # inputs read batch by batch are never fingerprinted whole
            return check_finite_features(extract(timesteps))
        key = (id(self.network_), input_key, self.noise_seed_, self.layers_, self.pooling,
               check_pooling_grid(self.pooling_grid), self.n_noise_draws, self.precision)
        return check_finite_features(extracted_once((self.network_, self.input_), key, data, timesteps, extract))

    def timesteps_for_sigmas(self, sigmas):
        """Timesteps of the fitted schedule closest to the given noise levels.

        Parameters
        ----------
        sigmas : array-like of float
            Noise levels ``sigma = sqrt((1 - abar) / abar)``.

        Returns
        -------
        timesteps : ndarray of int64
        """
        check_is_fitted(self)
        return self.schedule_.timesteps_for_sigmas(sigmas)

    def get_feature_names_out(self, input_features=None):
        """Output column names: ``t{timestep}__{layer}__{channel}``, then ``__r{row}c{column}`` for a grid cell.

        A layer pooled to one number per channel names its features by
        channel; on a grid of cells (or unpooled, ``pooling="none"``) each
        name ends with the cell's row and column (``p{position}`` for a 1-D
        token sequence), as ``feature_info_[layer]["cells"]`` lays them out.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Checked against the input feature names; not used otherwise.

        Returns
        -------
        feature_names_out : ndarray of str
        """
        check_is_fitted(self)
        _check_feature_names_in(self, input_features)
        labels = {
            layer: feature_labels(info["channels"], info["cells"]) for layer, info in self.feature_info_.items()
        }
        names = [f"t{t}__{layer}__{label}" for t in self.timesteps_ for layer in self.layers_ for label in labels[layer]]
        return np.asarray(names, dtype=object)

    # ----------------------------------------------------------- persistence
    def save_pretrained(self, directory):
        """Save the fitted featurizer: its denoiser in diffusers format plus diffrep's own config.

        A UNet denoiser is written as a diffusers DDPM pipeline (``model_index.json``,
        ``unet/``, ``scheduler/``: ``diffusers.DDPMPipeline.from_pretrained(directory)``
        loads it); the MLP as a model directory (its ``config.json``, safetensors
        weights and ``scheduler_config.json``). Next to them,
        ``diffrep_config.json`` holds the parameters and what ``fit`` learned
        besides the weights (layout, data scaling, noise, timesteps, layers), and
        ``diffrep_state.safetensors`` its arrays. :meth:`from_pretrained` reads
        it all back; ``DiffusionFeaturizer(denoiser=directory)`` reads the
        denoiser alone.

        The save is sealed: ``diffrep_manifest.json`` lists every file with its
        SHA-256 checksum, which :meth:`from_pretrained` checks. It is written
        into a temporary directory beside ``directory`` and renamed into place
        whole, so an interrupted save leaves the previous one intact, saving
        over another kind of featurizer leaves no stale file, and no file is
        written through a symbolic link.

        Parameters
        ----------
        directory : str or os.PathLike
            Created if needed. An existing one is replaced whole; it must be
            empty or hold a previous save (a directory of other files is
            refused rather than deleted), and must not be a symbolic link.

        Raises
        ------
        ValueError
            If ``directory`` is a file, a symbolic link, or a non-empty
            directory that no save wrote.
        """
        check_is_fitted(self)
        network = copy.deepcopy(self.network_).to("cpu")
        with staged_save(directory) as staging:
            save_denoiser(staging, network, self.schedule_)
            write_featurizer_files(staging, self)

    @classmethod
    def from_pretrained(cls, directory, device="auto"):
        """A fitted featurizer read from a directory written by :meth:`save_pretrained`.

        Its features equal those of the featurizer that was saved, on any data.
        Its ``denoiser`` parameter is the directory, so refitting it rescales
        to the new data and keeps the saved weights (no training).

        Before anything is used, every file is checked against the checksums
        of ``diffrep_manifest.json``, and every value of ``diffrep_config.json``
        against the parameter constraints of the estimator and the fitted
        values' types and ranges. A save of diffrep 0.2, which has no
        manifest, is read unverified with a warning; save it again to seal it.

        Parameters
        ----------
        directory : str or os.PathLike
        device : str, default="auto"
            Where the denoiser runs (the saved ``device`` is not reused).

        Returns
        -------
        featurizer : DiffusionFeaturizer
            Fitted, with the saved parameters.

        Raises
        ------
        ValueError
            Naming the file (and the config entry) at fault: a file that
            differs from its checksum, is missing or not listed; a config
            entry that is missing or invalid.
        """
        params, state, arrays = read_featurizer_files(directory, cls._get_param_names())
        config = os.path.join(os.fspath(directory), CONFIG_NAME)
        featurizer = cls(**dict(params, denoiser=os.fspath(directory), device=device))
        try:
            featurizer._validate_params()
            check_pooling_grid(featurizer.pooling_grid)
        except (ValueError, TypeError) as exc:  # sklearn's InvalidParameterError is both
            raise ValueError(f"{config}: {exc}") from None
        featurizer._restore(state, arrays, *load_denoiser(directory), config)
        return featurizer

    def _restore(self, state, arrays, network, schedule, config):
        """Set the fitted attributes from what :meth:`save_pretrained` wrote, checked against the denoiser."""
        self.n_features_in_ = state["n_features_in"]
        if state.get("feature_names_in") is not None:
            self.feature_names_in_ = np.asarray(state["feature_names_in"], dtype=object)
        self.sample_shape_ = tuple(state["sample_shape"])
        self.data_format_ = state["data_format"]
        try:
            self.timesteps_ = check_timesteps(state["timesteps"], schedule.num_train_timesteps, "fitted.timesteps")
            self.layers_ = check_layers(state["layers"], network, ())
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{config}: {exc}") from None
        self.input_ = ArrayInput(None, self.data_format_)
        self.input_.sample_shape = self.sample_shape_
        self.scaler_ = self.input_.scaler = DataScaler(state["scaling"])
        self.scaler_.offset_, self.scaler_.scale_ = arrays["scaler_offset"], arrays["scaler_scale"]
        self.loss_curve_ = list(state["loss_curve"])
        self.n_steps_ = state["n_steps"]
        self.reused_training_ = True
        self.device_ = resolve_device(self.device)
        self.network_ = network.to(self.device_).eval().requires_grad_(False)
        self.schedule_ = schedule
        self.sigmas_ = schedule.sigmas(self.timesteps_)
        self.noise_seed_ = state["noise_seed"]
        self.denoiser_description_ = self._describe(network, schedule)
        try:
            self.feature_info_ = self._extractor().describe(self.sample_shape_, self.timesteps_[0])
        except RuntimeError as exc:
            raise ValueError(
                f"{config}: fitted.sample_shape {list(self.sample_shape_)} does not fit the saved denoiser: {exc}"
            ) from None

    def __getstate__(self):
        state = super().__getstate__()
        if "network_" in state and self.device_.type != "cpu":
            state["network_"] = copy.deepcopy(self.network_).to("cpu")
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "network_" in state:
            self.device_ = available_or_cpu(self.device_)
            self.network_ = self.network_.to(self.device_)

    def __sklearn_is_fitted__(self):
        # feature_info_ is set last in fit: a fit that raised part-way (a diverging
        # loss, an incompatible denoiser) leaves the estimator unfitted.
        return hasattr(self, "feature_info_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
