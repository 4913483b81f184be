"""What runs on Ray workers: the GPU job scheduler and workers, training, dataset ingest, model
conversion, benchmarking and package building, each as plain code plus a thin actor shell.

The first of these arrive with the GPU scheduler and training issue; the store actor, which every
one of them writes through, lives in :mod:`store.actor`.
"""
