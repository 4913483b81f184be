"""The prediction pool on Ray Serve: the deployment, its metrics and its wiring."""
