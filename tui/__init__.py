"""The Textual TUI; it talks to the platform only through the SDK over HTTP.

See ``cvplatform.client``.
"""
