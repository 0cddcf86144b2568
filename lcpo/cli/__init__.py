"""Entry points: parse the command line (Hydra or argparse), wire the layers below, run, and report.

``python -m lcpo.train`` and the console scripts land here (``lcpo/train.py`` and its siblings only forward).
Nothing below this layer imports it.
"""
