"""ASMA: adversarial semantic-mask attacks on face-forgery detectors, with full-image and masked-CE baselines."""
