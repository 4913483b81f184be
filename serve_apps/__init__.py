"""The HTTP-facing apps: the management API, authentication and authorization, and (later) the
Ray Serve prediction deployments."""
