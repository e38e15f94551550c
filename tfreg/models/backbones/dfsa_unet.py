"""Dense multi-branch registration network with attention-guided field fusion (``dfsa_unet``), 2-D and 3-D.

He, He and Cao 2022 ("Deformable image registration with attention-guided fusion of multi-scale deformation
fields", section 3.4): "input images are successively down-sampled with a ratio of 0.5 for branches from top
to down to extract features and produce displacement fields of different scales", and the fields are fused
from coarse to fine::

    DF_K^a = DF_K^c,      DF_k^a = DFSA(DF_{k+1}^a) + DF_k^c   (k = K-1, ..., 1; eq. 5)

The final field is ``phi = DF_1^a`` at full resolution. Branch ``k`` (``k = 1`` the top) works on the grid
``image_size / 2^(k-1)``; K = 4 in the paper (64, 32, 16, 8 pixels at its 64x64 training size).

Architecture (the paper's network figure is not in the text, so these are our choices, after the
"U-Net structure" its discussion names):

- the trunk is the ``unet_segmenter`` U-Net (:class:`~tfreg.models.backbones.unet_segmenter.UNetSegmenter`)
  with ``K`` levels: per level two ``3^n`` convolutions -> batch norm -> ReLU, ``2^n`` max pooling (the 0.5
  down-sampling between branches), transposed-convolution up-sampling and concatenated skips;
- branch ``k`` reads the decoder's output at level ``k - 1`` (the bottleneck for the bottom branch) and ends
  in a linear ``3^n`` convolution to ``ndim`` channels, ``DF_k^c``, in voxels of the branch's own grid and
  zero-initialised (``out_kernel_initializer``), so training starts at the identity;
- the fusion is :class:`~tfreg.layers.fusion.DFSA`: the coarser field is resized (linear) to the finer grid
  with its values doubled, weighted per channel by a sigmoid map, and added (``fusion`` configures the
  block: ``filters``, ``kernel_size``, ``activation``, ``weight_source``);
- ``fuse: a`` feeds the fused coarser field ``DF_{k+1}^a`` to DFSA (eq. 5, default); ``fuse: c`` feeds the
  coarser branch's own field ``DF_{k+1}^c`` (eq. 6);
- ``fused_branches: m`` (1..K) keeps only the top ``m`` branches' fields, the paper's ablation of the number
  of fused scales (its Fig. 9, "counted from top to down": 1 = the top branch alone). The trunk is unchanged.

Trainable parameters of the default (two input channels, ``channels`` 16-32-64-128, DFSA blocks of two
16-filter convolutions per channel): 2-D 501,886 with ``fused_branches: 4`` (482,866 with 1); 3-D 1,487,669
(1,402,979). Batch norm adds 1,408 statistics.
"""

from typing import Any, Dict, Optional, Sequence

import keras

from tfreg.checks import check_choice, check_positive_int
from tfreg.layers.conv import conv_layer
from tfreg.layers.fusion import DFSA
from tfreg.models.backbones.base import Backbone
from tfreg.models.backbones.unet_segmenter import UNetSegmenter, check_channels
from tfreg.registry import REGISTRY

#: which coarser field DFSA fuses: the fused one (eq. 5) or the coarser branch's own (eq. 6)
FUSE_SOURCES = ("a", "c")
#: keys of the ``fusion`` mapping (the DFSA block's arguments)
FUSION_KEYS = ("filters", "kernel_size", "activation", "weight_source")


def check_divisible(image_size: Sequence[int], num_branches: int) -> None:
    """ValueError unless every spatial size is a multiple of ``2^(num_branches - 1)``.

    Each branch halves the grid; a size that does not halve exactly would put the coarse fields on grids
    whose voxels do not nest, and DFSA's x2 value scaling would no longer be exact."""
    factor = 2 ** (num_branches - 1)
    bad = [s for s in image_size if s % factor]
    if bad:
        raise ValueError(
            f"image_size {tuple(image_size)} does not fit num_branches {num_branches}: every spatial size must be a "
            f"multiple of 2^(num_branches - 1) = {factor} voxels (resize the images or use fewer branches)"
        )


@REGISTRY.register_backbone(name="dfsa_unet")
class DFSAUNet(Backbone):
    """Multi-branch U-Net whose per-scale fields are fused by DFSA blocks; see the module docstring.

    Args:
        num_branches: K, the U-Net's levels and branches, int >= 1 (default 4). Every ``image_size`` entry
            must be a multiple of ``2^(K - 1)``.
        fused_branches: how many of the top branches' fields are fused, 1..K (default K).
        channels: channels per level (K ints); default ``num_channel_initial * 2^k``.
        num_channel_initial: channels of the top level when ``channels`` is not given (default 16).
        convs_per_block: convolution units per encoder and decoder block (default 2).
        norm: ``"batch"`` (default), ``"instance"``, ``"group"`` or ``"none"`` (see ``unet_segmenter``).
        activation: ``"relu"`` (default) or ``"leaky_relu"``.
        fusion: the DFSA block's arguments ``{filters, kernel_size, activation, weight_source}``.
        fuse: ``"a"`` (eq. 5, default) or ``"c"`` (eq. 6), see the module docstring.
        out_channels: must be ``ndim`` (the field's components; the default).
        out_kernel_initializer: of the branch heads (``"zeros"`` in DDF models).
        out_activation: must be None (displacements are unbounded).
        image_size, name, **kwargs: see :class:`~tfreg.models.backbones.base.Backbone`.

    Call: ``(B, *image_size, C)`` (the moving and fixed images concatenated) -> ``(B, *image_size, ndim)``,
    the fused field ``DF_1^a`` in voxels of the full grid.

    Raises:
        ValueError: naming the argument, for bad values, a size not divisible by ``2^(K-1)``, ``out_channels``
            other than ``ndim`` or an output activation.
    """

    def __init__(
        self,
        num_branches: int = 4,
        fused_branches: Optional[int] = None,
        channels: Optional[Sequence[int]] = None,
        num_channel_initial: int = 16,
        convs_per_block: int = 2,
        norm: str = "batch",
        activation: str = "relu",
        fusion: Optional[Dict[str, Any]] = None,
        fuse: str = "a",
        out_channels: Optional[int] = None,
        name: str = "DFSAUNet",
        **kwargs,
    ):
        if out_channels is None:  # the field's components: ndim
            out_channels = len(kwargs.get("image_size", ())) or 1
        super().__init__(num_channel_initial=num_channel_initial, out_channels=out_channels, name=name, **kwargs)
        self.num_branches = check_positive_int(num_branches, "num_branches")
        check_divisible(self.image_size, self.num_branches)
        fused = self.num_branches if fused_branches is None else fused_branches
        self.fused_branches = check_positive_int(fused, "fused_branches")
        if self.fused_branches > self.num_branches:
            raise ValueError(
                f"fused_branches must be in 1..num_branches = {self.num_branches}, got {self.fused_branches}"
            )
        if self.out_channels != self.ndim:
            raise ValueError(
                f"out_channels must be {self.ndim} (the components of a {self.ndim}-D field), got {self.out_channels}"
            )
        if self.out_activation is not None:
            raise ValueError(f"out_activation must be None (displacements are unbounded), got {self.out_activation!r}")
        if channels is None:
            channels = [self.num_channel_initial * 2**k for k in range(self.num_branches)]
        self.channels = check_channels(channels)
        if len(self.channels) != self.num_branches:
            raise ValueError(
                f"channels must have num_branches = {self.num_branches} entries (one per level), got {channels!r}"
            )
        self.convs_per_block = convs_per_block
        self.norm = norm
        self.activation = activation
        self.fuse = check_choice(fuse, "fuse", FUSE_SOURCES)
        fusion = {} if fusion is None else fusion
        if not isinstance(fusion, dict):
            raise ValueError(f"fusion must be a mapping {{{', '.join(FUSION_KEYS)}}}, got {fusion!r}")
        unknown = sorted(set(fusion) - set(FUSION_KEYS))
        if unknown:
            raise ValueError(f"fusion has unknown key(s) {unknown}; allowed: {list(FUSION_KEYS)}")
        self.fusion = dict(fusion)
        self.trunk = UNetSegmenter(
            image_size=self.image_size,
            channels=self.channels,
            convs_per_block=convs_per_block,
            norm=norm,
            activation=activation,
            name="trunk",
        )
        self.heads = [
            conv_layer(
                self.ndim,
                self.ndim,
                3,
                padding="same",
                kernel_initializer=self.out_kernel_initializer,
                name=f"field_{k + 1}",
            )
            for k in range(self.fused_branches)
        ]
        self.fusions = [DFSA(**self.fusion, name=f"dfsa_{k + 1}") for k in range(self.fused_branches - 1)]

    def build(self, input_shape):
        # a symbolic pass builds the trunk, heads and DFSA blocks (each needs its own input shape)
        self.fields(keras.KerasTensor(tuple(input_shape)))
        self.built = True

    def fields(self, inputs, training=None):
        """``(branch fields, fused fields)``: ``[DF_1^c, ..., DF_m^c]`` and ``[DF_1^a, ..., DF_m^a]``, field
        ``k`` of shape ``(B, *image_size / 2^(k-1), ndim)`` in voxels of its own grid (``m = fused_branches``)."""
        levels = self.trunk.level_features(inputs, training=training)
        branch = [head(levels[k]) for k, head in enumerate(self.heads)]
        fused = [None] * self.fused_branches
        fused[-1] = branch[-1]
        for k in range(self.fused_branches - 2, -1, -1):
            coarse = fused[k + 1] if self.fuse == "a" else branch[k + 1]
            fused[k] = self.fusions[k]([coarse, branch[k]])
        return branch, fused

    def call(self, inputs, training=None, mask=None):
        """``(B, *image_size, C)`` -> ``(B, *image_size, ndim)``, the fused full-resolution field."""
        return self.fields(inputs, training=training)[1][0]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.ndim,)

    config_keys = Backbone.config_keys + (
        "num_branches",
        "fused_branches",
        "channels",
        "convs_per_block",
        "norm",
        "activation",
        "fusion",
        "fuse",
    )


__all__ = ["DFSAUNet", "FUSE_SOURCES", "FUSION_KEYS", "check_divisible"]
