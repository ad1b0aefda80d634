"""``fedray run purify``: PFAD motion-artifact purification of MR slices and its baselines."""
