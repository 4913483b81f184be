"""Training as plain code: the loops for classifiers and YOLO detectors, the optimizer, the device
and its memory limit, mAP50. The loops report through hooks; :mod:`actors.training_task` wires the
hooks to the store and runs a job on a GPU slot."""
