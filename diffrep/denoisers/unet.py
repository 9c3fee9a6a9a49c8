"""A diffusers ``UNet2DModel`` sized from the image shape."""

from __future__ import annotations


def _halvings(size):
    """How many times ``size`` can be halved exactly."""
    count = 0
    while size % 2 == 0 and size > 1:
        size //= 2
        count += 1
    return count


def unet_levels(height, width):
    """Number of resolution levels for an image of the given size.

    Small images get two levels (8x8 -> 4x4 at the bottleneck), up to 64 pixels
    three, larger four. Each level but the last halves the resolution, so the
    depth is also capped by how often both sides can be halved exactly: odd
    sizes need no padding, they simply get a shallower network.

    Parameters
    ----------
    height, width : int

    Returns
    -------
    levels : int
    """
    largest = max(height, width)
    target = 2 if largest <= 16 else 3 if largest <= 64 else 4
    return max(1, min(target, 1 + _halvings(height), 1 + _halvings(width)))


# Images up to this many pixels get the wider default UNet (see default_width).
SMALL_IMAGE_PIXELS = 16 * 16


def default_width(image_shape):
    """Channels of the first level when ``model_width=None``: 32 up to 16x16 pixels, 16 above.

    A training step costs about pixels x channels^2, and most of it is spent at
    full resolution. On 28x28 digits, channels (16, 32, 64) train twice as many
    steps per CPU second as the (32, 64, 64) of diffrep 0.1, and their features
    after 5 minutes beat those after 30 (``benchmarks/time_to_features.py``).
    Small images keep width 32, whose 2,000 default steps take minutes there.

    Parameters
    ----------
    image_shape : tuple of int
        ``(channels, height, width)``.

    Returns
    -------
    width : int
    """
    _, height, width = image_shape
    return 32 if height * width <= SMALL_IMAGE_PIXELS else 16


# Training steps when max_steps=None: 2,000 for small images and tables (minutes on a CPU),
# LARGE_IMAGE_STEPS above SMALL_IMAGE_PIXELS, where a step costs about 6x more.
SMALL_IMAGE_STEPS = 2000
LARGE_IMAGE_STEPS = 600


def default_max_steps(sample_shape):
    """Training steps when ``max_steps=None``: 2,000 up to 16x16 pixels (and for tables), 600 above.

    On one thread of our shared 2-core machine a default fit took 7.7
    CPU-minutes on 28x28 images (0.77 s per step of 128 images, idle core) and
    12 to 18 on 8x8 digits (0.35 to 0.55 s per step, under load; the user
    guide's 'Training time' gives the conditions); the user guide shows
    what 150, 300 and 600 steps give on real 28x28 digits
    (``benchmarks/feature_quality.py``).

    Parameters
    ----------
    sample_shape : tuple of int
        ``(channels, height, width)`` of an image, or ``(n_features,)`` of a table row.

    Returns
    -------
    max_steps : int
    """
    if len(sample_shape) != 3 or sample_shape[1] * sample_shape[2] <= SMALL_IMAGE_PIXELS:
        return SMALL_IMAGE_STEPS
    return LARGE_IMAGE_STEPS


def build_unet(image_shape, width=None):
    """A small ``UNet2DModel`` for images of shape ``(C, H, W)``.

    Convolutional residual blocks at every level, self-attention only in the
    middle block (the lowest resolution), one residual block per level.

    Parameters
    ----------
    image_shape : tuple of int
        ``(channels, height, width)``.
    width : int or None, default=None
        Channels of the first level; each deeper level doubles them. Must be
        a multiple of 8 (group normalization uses 8 groups). None sizes it for
        the image (:func:`default_width`).

    Returns
    -------
    unet : diffusers.UNet2DModel
    """
    _, height, width_px = image_shape
    width = width or default_width(image_shape)
    if width % 8 or width < 8:
        raise ValueError(f"model_width must be a positive multiple of 8 for the UNet, got {width}.")
    return unet_with_channels(image_shape, tuple(width * 2**level for level in range(unet_levels(height, width_px))))


def unet_with_channels(image_shape, block_out_channels):
    """The built-in ``UNet2DModel`` design with the given channels per level (one level each).

    Parameters
    ----------
    image_shape : tuple of int
        ``(channels, height, width)``.
    block_out_channels : tuple of int
        Channels of each resolution level, multiples of 8.

    Returns
    -------
    unet : diffusers.UNet2DModel
    """
    from diffusers import UNet2DModel

    channels, height, width_px = image_shape
    levels = len(block_out_channels)
    return UNet2DModel(
        sample_size=(height, width_px),
        in_channels=channels,
        out_channels=channels,
        block_out_channels=tuple(block_out_channels),
        down_block_types=("DownBlock2D",) * levels,
        up_block_types=("UpBlock2D",) * levels,
        layers_per_block=1,
        norm_num_groups=8,
        attention_head_dim=8,
    )
