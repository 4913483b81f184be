"""The benchmark job: every requested engine at every batch size, the accuracy each keeps, the
constraints' verdicts and the engine selection. The measuring itself is
:mod:`cvplatform.benchmarking`, the engines :mod:`cvplatform.engines`."""
