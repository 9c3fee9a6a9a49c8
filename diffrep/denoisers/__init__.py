"""Denoiser networks and how to obtain them.

The denoiser protocol
---------------------
diffrep works with any ``torch.nn.Module`` whose ``forward(x_t, t)`` takes

* ``x_t``: a float tensor of shape ``(batch, *sample_shape)``, noised with the
  variance-preserving DDPM forward process (see :mod:`diffrep.schedules`), and
* ``t``: a ``torch.long`` tensor of shape ``(batch,)`` of schedule indices,

and returns a tensor of the same shape as ``x_t`` (or an object with a
``.sample`` tensor, or a tuple whose first item is that tensor, as diffusers
models do). Optional attributes refine how the featurizer treats it:

``prediction_type``
    ``"epsilon"``, ``"sample"`` or ``"v_prediction"``: what ``forward`` predicts.
``noise_schedule``
    A :class:`~diffrep.schedules.NoiseSchedule` the network was built for; it
    then defines the valid timesteps instead of the featurizer's parameters.
``default_layers``
    Names of the submodules captured when the featurizer's ``layers=None``.
``token_activations``
    True when 3-D activations of its blocks are ``(batch, tokens, dim)``
    sequences of patch tokens (transformer blocks): they are pooled over the
    tokens, or laid out on the patch grid for ``pooling="none"``.
``input_scaling``
    ``"minmax"``, ``"standard"`` or ``"none"``: the data scaling the network
    expects, used by the featurizer's ``scaling="auto"``.

The featurizer reads these attributes once, in ``fit``, into a
:class:`~diffrep.denoisers.description.DenoiserDescription` (its
``denoiser_description_``); nothing else reads them.

Any named submodule (``dict(module.named_modules())``) can be captured, plus
the special source ``"x0"``: the clean-input estimate derived from the output.
"""
