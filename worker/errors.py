"""What the terminal commands raise for a user to act on. Kept apart from the HTTP client
so that `corral`'s dispatch can catch it without importing the client."""


class CommandError(Exception):
    """A command failed in a way the user can act on; the message says how. Exit status 1,
    or `status` when given (2: the command line itself was wrong)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status
