"""The Genet curriculum, generic over use cases (paper §4.2-4.3, Algorithms 1 and 2).

* :mod:`~genet.curriculum.usecase` — the two-call interface a use case implements:
  ``train(model, distribution, iterations) -> model`` and
  ``test(policy, configs, seed) -> per-environment rewards``.
* :mod:`~genet.curriculum.distribution` — the training distribution: UDR ranges,
  promoted configs (weight 0.3, older entries x 0.7) and optional real traces.
* :mod:`~genet.curriculum.search` — Bayesian optimisation (scikit-optimize GP)
  of the gap-to-baseline over the config space.
* :mod:`~genet.curriculum.loop` — rounds of train -> search -> promote, with
  checkpoints and resume.
"""
