"""Class-incremental continual learning on task-stream actors: Mamba-CL and its baselines (``fedray run continual``)."""
