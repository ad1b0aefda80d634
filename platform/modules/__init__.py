"""The model library every workload builds from.

One idea per file: ``encoders`` (conv encoders with named stage outputs), ``heads`` (classification heads),
``classifier`` (encoder + head with the ``forward_features`` / ``forward_head`` split that is also the default
boundary between shared and personal parameters), ``config`` (their torch-free configuration). Later workloads add
blocks beside these, never copies of them. Import from the submodules: this package file stays empty so that reading
a config does not import torch.
"""
