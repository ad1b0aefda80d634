"""Diffusion building blocks shared by every diffusion workload (purification, OOD detection, SR, composition).

``schedules`` (β schedules), ``gaussian`` (the closed forms: ᾱ_t, ``q_sample``, posterior, ε/x₀ conversions,
respacing), ``samplers`` (DDPM ancestral and DDIM loops, DDIM inversion), ``embedding`` (sinusoidal time
embedding), ``unet`` (a small guided-diffusion UNet) and ``feature_mlp`` (DLSR's MLP feature denoiser). Nothing here
is specific to one task.
"""
