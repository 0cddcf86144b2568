"""Budget-grid evaluation: run models over a grid of budgets and modes, grade, summarise into rows, and write the
report (JSON, markdown, plots) and the demo's acceptance bars.

Imports :mod:`lcpo.rollout`, :mod:`lcpo.tasks`, :mod:`lcpo.models`, :mod:`lcpo.config` and :mod:`lcpo.algo`;
training's periodic validation imports it, never the other way.
"""
