"""Expected failures: each carries the exit code the CLI returns and a one-line message.

Anything that is not a ReportgenError is a bug and is shown with a traceback.
"""


class ReportgenError(Exception):
    """An expected failure: message for the user, plus an optional hint on what to do."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(ReportgenError):
    """Bad flag, unknown model, no images, unwritable output folder: exit 2."""

    exit_code = 2


class WeightsError(ReportgenError):
    """Weights cannot be found, downloaded, or verified: exit 3."""

    exit_code = 3


class InputError(ReportgenError):
    """One input image cannot be used. Collected per file; the run goes on."""

    exit_code = 1


class ClusterError(ReportgenError):
    """The Dask scheduler cannot be reached or was lost, or a shard failed on every worker
    it was tried on: exit 5. The previous report is left as it was."""

    exit_code = 5
