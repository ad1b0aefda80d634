"""Model configuration (kept free of torch so that ``fedray config`` stays fast)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fedray.platform.errors import ConfigError


@dataclass
class ModelConfig:
    """Sizes of the conv trunk shared by every federated method (the method picks the architecture around it), or of
    a ResNet trunk (``res_blocks`` basic blocks per width) for the ``resnet`` architecture.

    ``shared`` lists fnmatch patterns over parameter names (e.g. ``encoder.*``) of the tensors the parameter server
    aggregates; all others stay on their client. Left empty, the method's own split applies (``fedavg``: ``*``).
    """

    widths: list[int] = field(default_factory=lambda: [16, 32, 64])
    norm_groups: int = 8
    res_blocks: int = 1  # basic blocks per stage of the ``resnet`` architecture (1: ResNet-8 at three widths)
    shared: list[str] | None = None
    pfr_loss_weights: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])  # alpha, beta, gamma

    def check(self, prefix: str = "model") -> None:
        """One-line errors for sizes no network can have (``prefix``: where these keys sit in the config)."""
        if not self.widths or min(self.widths) < 1:
            raise ConfigError(f"{prefix}.widths must be one or more positive channel counts, got {self.widths}")
        if self.norm_groups < 1 or self.res_blocks < 1:
            raise ConfigError(
                f"{prefix}.norm_groups and {prefix}.res_blocks must be at least 1, "
                f"got {self.norm_groups} and {self.res_blocks}"
            )
        if len(self.pfr_loss_weights) != 3 or min(self.pfr_loss_weights) < 0:
            raise ConfigError(
                f"{prefix}.pfr_loss_weights must be three weights ≥ 0 (alpha, beta, gamma), got {self.pfr_loss_weights}"
            )


@dataclass
class MambaConfig:
    """Sizes of the vision Mamba backbone: ``image_size/patch_size``² tokens of width ``d_model`` through ``depth``
    Mamba blocks (inner width ``expand·d_model``, SSM state ``d_state``, δ rank ``dt_rank``, causal conv
    ``d_conv``), mean-pooled.

    ``group_norm`` is the De-focus Mamba grouped RMS normalisation of the scan output (channels per group; ``null``
    applies D and the SiLU(z) gate inside the scan instead, as plain Mamba). δ = softplus(dt_proj(W_δ x)) /
    ``delta_scale``. ``scan`` picks the selective-scan implementation (``auto``: mamba-ssm's kernel on CUDA when
    installed, else the parallel pure-torch scan); ``discretization`` is ``mamba`` (B̄ = δB, as mamba-ssm) or ``zoh``.
    """

    patch_size: int = 4
    d_model: int = 64
    expand: int = 2
    d_state: int = 16
    dt_rank: int = 4
    d_conv: int = 4
    depth: int = 4
    group_norm: int | None = 64
    delta_scale: float = 1.0
    scan: str = "auto"
    discretization: str = "mamba"


@dataclass
class UNetConfig:
    """Sizes of the diffusion UNet (guided-diffusion's design, scaled down): ``model_channels`` × ``channel_mult``
    per resolution level, ``num_res_blocks`` residual blocks per level, self-attention where the feature map's side is
    in ``attention_resolutions`` (``num_head_channels`` per head when set, else ``num_heads`` heads), time embedding
    as scale and shift of the normalisation (``scale_shift_norm``), resampling inside residual blocks
    (``resblock_updown``) or by strided/nearest convolutions."""

    model_channels: int = 32
    channel_mult: list[int] = field(default_factory=lambda: [1, 2, 2])
    num_res_blocks: int = 2
    attention_resolutions: list[int] = field(default_factory=lambda: [16, 8])
    num_heads: int = 4
    num_head_channels: int | None = None
    dropout: float = 0.0
    scale_shift_norm: bool = True
    resblock_updown: bool = False


@dataclass
class SRNetConfig:
    """Sizes of the DiT-SR network: a U-shape of ``model_channels`` × ``channel_mult`` with ``num_res_blocks`` residual
    blocks per level, and at every level an isotropic transformer stage at ``embed_dim`` — ``depth`` Swin blocks with
    ``window``×``window`` (shifted) windows, ``num_heads`` heads, MLP ``mlp_ratio`` — conditioned on the timestep by
    ``modulation`` (``adafm``: DiT-SR's frequency modulation; ``adaln``: the ablation; ``none``)."""

    model_channels: int = 32
    channel_mult: list[int] = field(default_factory=lambda: [1, 2, 2])
    num_res_blocks: int = 1
    embed_dim: int = 64
    depth: int = 2
    window: int = 8
    num_heads: int = 2
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    modulation: str = "adafm"
