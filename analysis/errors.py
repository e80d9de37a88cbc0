"""User-facing errors.

Every error a researcher can cause (a bad file, a missing model, a wrong option) is a
``TextlabError`` whose message says what is wrong, where, and what to do. The UI shows the
message as it is and the CLI prints it as one line; neither shows a traceback for these.
"""


class TextlabError(Exception):
    """An error with a message meant for the user (what, where, what to do)."""


class CorpusError(TextlabError, ValueError):
    """The input file or the chosen columns cannot be used as a corpus."""


class ModelNotAvailable(TextlabError):
    """A model is not on this machine and may not be downloaded now."""


class TaskNotAvailable(TextlabError):
    """No task of that name is registered."""


class JobCancelled(TextlabError):
    """A job was cancelled by the user."""


class JobPaused(JobCancelled):
    """A job stepped aside between chunks so that others' jobs get a turn (workshop mode); it
    goes back to the queue and resumes from its checkpoints."""


class ColumnChoiceError(TextlabError, KeyError, ValueError):
    """The columns chosen for a table or chart cannot be used (missing, the same column in
    two roles, a reserved name). A KeyError and a ValueError too, for callers that catch those."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CodebookError(TextlabError, ValueError):
    """A codebook cannot be used as it is (duplicate labels, bad template, ...)."""
