"""lcpo: Length Controlled Policy Optimization for reasoning language models, on Hydra and PyTorch Lightning."""

__version__ = "0.1.0"
