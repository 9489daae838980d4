"""Errors pairhunt raises for bad user input, reported by the CLI without a traceback."""


class PairhuntError(ValueError):
    """A bad argument, config, file or model: the message says what and where."""


class OutputError(PairhuntError):
    """An output could not be written (unwritable or blocked path).

    Never a property of the input: the run stops at once instead of skipping the file being read.
    """


def pairhunt_cause(error: BaseException) -> PairhuntError | None:
    """The PairhuntError behind ``error``: coffea wraps the exceptions a processor raises."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, PairhuntError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def failure_reason(error: BaseException) -> str:
    """``Type: message``, first line only: what a one-line report of a failed read says."""
    return f"{type(error).__name__}: {error}".splitlines()[0]


def unreadable(path, error: BaseException) -> PairhuntError:
    """The error for an input file that could not be opened or read, naming it and why."""
    return PairhuntError(f"cannot read {path}: {failure_reason(error)}")
