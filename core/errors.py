"""The errors a core call raises for a caller's mistake; each face turns them into a 4xx."""


class CorralError(Exception):
    """A request the core refuses; `message` says what was wrong, for the caller to read."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(CorralError):
    """The request is well-formed but not acceptable (a cycle, a child under a leaf, ...)."""


class NotFound(CorralError):
    """A job, worker or other object named by the request does not exist."""

    status = 404


class Forbidden(CorralError):
    """The caller may not do this."""

    status = 403
