"""The job kernel: every kind of background work runs through it.

- :mod:`actors.jobs.registry`: a job, its outcome, and the table from job kind to the plain
  function that runs it (``run(job, reporter) -> Outcome``) and the one that records its end.
- :mod:`actors.jobs.reporter`: what a running job reports through (progress, events,
  cancellation, artifacts, reads).
- :mod:`actors.jobs.scheduling`: which queued jobs start now, as a pure function.
- :mod:`actors.jobs.runner`: the Ray shell, the one supervise/submit path.

A new kind of job is one entry in the registry, its two functions and their tests.
"""
