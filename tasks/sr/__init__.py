"""``fedray run sr``: DiT-SR (ResShift diffusion with an isotropic Swin U-shape and AdaFM) and its baselines."""
