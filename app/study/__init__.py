"""The Genet-vs-UDR study (issue 17) and the shipped models, as ``genet`` commands.

``genet study run`` trains a matrix of named presets x seeds as the project's own commands, evaluates every
model beside the baselines and writes the table and learning curves (resumable); ``genet models ship`` makes
``models/{abr,cc}/*.onnx`` with their metadata and ``models/RESULTS.md``; ``genet study per-trace``,
``top-rung`` and ``cc-startup`` print the analyses behind ``models/study/FINDINGS.md``.

Modules: :mod:`~app.study.invoke` (how a ``genet`` subprocess runs and how its summary is read),
:mod:`~app.study.presets` (budgets, presets, evaluation sets), :mod:`~app.study.runner` (the resumable
matrix), :mod:`~app.study.table` and :mod:`~app.study.curves` (its outputs),
:mod:`~app.study.publish` (``--publish`` / ``--restore``), :mod:`~app.study.ship` (the shipped models),
:mod:`~app.study.per_trace`, :mod:`~app.study.top_rung`, :mod:`~app.study.cc_startup` (the analyses)
and :mod:`~app.study.cli` (the commands; cheap to import: everything else loads when a command runs).
"""
