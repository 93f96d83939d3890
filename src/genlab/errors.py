"""User-facing errors: the CLI prints them as one line, never as a traceback."""


class GenlabError(Exception):
    """A problem the user can fix; the message names the problem and the fix."""


class ConfigError(GenlabError):
    """An unknown key, a wrong type or an impossible value in a config."""


class DataError(GenlabError):
    """A dataset that cannot be found, downloaded, verified or decoded."""


class RunError(GenlabError):
    """A run folder that is missing, incompatible or would be overwritten."""


class HubError(GenlabError):
    """The Hugging Face Hub cannot be reached or refuses (no network, offline mode, no token, no such repo), or
    genlab's ``hub`` extra is not installed."""


class TrainingDiverged(GenlabError):
    """A NaN or infinite loss; the last good checkpoint is kept."""


class Interrupted(GenlabError):
    """Ctrl-C, SIGTERM or SIGHUP; the message says what was saved and how to continue. The CLI exits with
    128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP)."""

    def __init__(self, message: str, signum: int = 2):
        super().__init__(message)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum
