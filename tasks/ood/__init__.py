"""``fedray run ood``: DLSR feature-diffusion OOD detection and its baselines."""
