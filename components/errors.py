"""The project's error base.

Every error the project raises on purpose derives from :class:`ChurnError` (and keeps a
``ValueError`` / ``RuntimeError`` mix-in so callers that catch those still work). The ``churn``
CLI prints a ``ChurnError`` as one line and exits 1; anything else is a bug and keeps its
traceback. Standard library only: every image may import it.
"""


class ChurnError(Exception):
    """An expected failure with a message for the user: it names the field, file or endpoint."""
