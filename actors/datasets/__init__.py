"""Datasets as plain code: recognizing a layout, validating every sample (decode, probe, labels,
boxes), the seeded stratified split, preprocessing with its cache key, augmentation, and the two
sample datasets. :mod:`actors.dataset_task` runs it on Ray."""
