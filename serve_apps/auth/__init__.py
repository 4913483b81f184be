"""Authentication and authorization as plain code: passwords, tokens, API keys, the RBAC policy.

Nothing here imports Ray or a web framework; the API's guard calls these functions.
"""
