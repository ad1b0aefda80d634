"""``fedray run fairness``: FairFD group-fairness metrics of forgery detectors, and BPFA pruning with its
baselines."""
