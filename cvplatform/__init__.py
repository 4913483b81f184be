"""cv-platform: from model upload to a measured, packaged deployment on one node.

This package is the product's face and shared kernel: configuration, errors, the schemas shared by
the API and the SDK, the SDK itself, the ``cvp`` CLI and the Ray bootstrap.
"""

__version__ = "0.1.0"

# Every named actor of the platform lives in this Ray namespace.
RAY_NAMESPACE = "cvplatform"
