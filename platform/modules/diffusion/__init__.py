"""Diffusion building blocks shared by every diffusion workload (purification, OOD detection, SR, composition).

``schedules`` (β schedules), ``gaussian`` (the closed forms: ᾱ_t, ``q_sample``, posterior, ε/x₀ conversions,
respacing), ``samplers`` (DDPM ancestral and DDIM loops, DDIM inversion), ``embedding`` (sinusoidal time
embedding), ``unet`` (a small guided-diffusion UNet, optionally with cross-attention and control residuals),
``cross_attention`` (cross-attention to image tokens with exchangeable K/V processors: dual K/V + fusion block, or one
K/V), ``controlnet`` (a trainable encoder copy conditioned on an image) and ``feature_mlp`` (DLSR's MLP feature
denoiser). Nothing here
is specific to one task.
"""
