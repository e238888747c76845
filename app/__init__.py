"""The application on top of the import graph: the ``genet`` command line (:mod:`app.cli`), the main job
(``genet run``, :mod:`app.run`), the Genet-vs-UDR study and model shipping (``genet study``, ``genet models
ship``, :mod:`app.study`) and the quick tour (``genet demo``). It may import every folder; none imports it."""
