"""The one exception type a user ever sees: a short message saying what happened and what to do."""


class UserError(Exception):
    """A problem with the user's input or environment, reported as one clear message and a clean exit."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __reduce__(self):
        """Pickled whole, hint included (a Ray task's error reaches the driver so)."""
        return type(self), (self.message, self.hint)

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  {self.hint}"


class ResultsError(UserError):
    """A results file that cannot be opened: wrong format, corrupt, truncated or of another schema."""
