"""CLI verbs for this stage (registered on soritune.cli.app.app)."""

from soritune.cli.app import app  # noqa: F401
