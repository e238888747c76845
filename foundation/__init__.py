"""The foundation of genet-testbed, at the bottom of the import graph: the error types, crash-safe writes and the
run journal, the TOML reader and the config engine, the generic registry, statistics, the metric vocabulary and
packet sizes, run metadata, optional-extra checks, the --help formatter. Standard library and numpy only; every
other folder (traces, genet, emulation, sender, player, deploy, app) may import it, and it imports none of them."""
