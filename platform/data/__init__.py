"""Datasets as in-memory image arrays (``load``, ``arrays``, ``idx``) and the partitioners that split them across
federated clients (``partition``). Import from the submodules; ``config`` is free of heavy imports."""
