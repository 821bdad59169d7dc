"""The base of every error a user can cause (bad config, bad file, bad argument).

The CLI prints these as one line and exits non-zero; anything else is a bug
and keeps its traceback.
"""


class DrivesimError(Exception):
    """A problem with the user's input, files or arguments, with a message that says what to fix."""
