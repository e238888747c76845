"""The Genet-vs-UDR study (issue 17) and the shipped models, as ``genet`` commands.

``genet study run`` trains a matrix of named presets x seeds as the project's own commands, evaluates every
model beside the baselines and writes the table and learning curves (resumable); ``genet models ship`` makes
``models/{abr,cc}/*.onnx`` with their metadata and ``models/RESULTS.md``; ``genet study per-trace``,
``top-rung`` and ``cc-startup`` print the analyses behind ``models/study/FINDINGS.md``.

Modules: :mod:`~genet.study.invoke` (how a ``genet`` subprocess runs and how its summary is read),
:mod:`~genet.study.presets` (budgets, presets, evaluation sets), :mod:`~genet.study.runner` (the resumable
matrix), :mod:`~genet.study.table` and :mod:`~genet.study.curves` (its outputs),
:mod:`~genet.study.publish` (``--publish`` / ``--restore``), :mod:`~genet.study.ship` (the shipped models),
:mod:`~genet.study.per_trace`, :mod:`~genet.study.top_rung`, :mod:`~genet.study.cc_startup` (the analyses)
and :mod:`~genet.study.cli` (the commands; cheap to import: everything else loads when a command runs).
"""
