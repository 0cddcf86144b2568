"""Budget-grid evaluation: run models over a grid of budgets and modes, grade, summarise into rows, and write the
report (JSON, markdown, plots) and the demo's acceptance bars.

One idea a module: ``rows`` (the typed report row and how rows are grouped), ``plan`` (tasks, problems and the
cells of a grid), ``cells`` (one cell sampled, graded and scored), ``engines`` (the models and their engines),
``store`` (finished cells on disk, for resuming), ``run`` (the loop over models and cells), ``report`` and
``plots`` (the files), ``acceptance`` and ``optimum`` (the demo's bars and the reward's best policy).

Imports :mod:`lcpo.rollout`, :mod:`lcpo.tasks`, :mod:`lcpo.models`, :mod:`lcpo.config` and :mod:`lcpo.algo`;
training's periodic validation imports it, never the other way.
"""
