"""The genetic-algorithm hyperparameter search: search space, seeded GA operators, and the
``GeneticSearcher`` that plugs them into Ray Tune (arrives with the GA issue)."""
