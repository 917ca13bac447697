"""The project's exceptions.

Everything a user can cause (bad input file, bad codebook, bad arguments) raises a
``PipelineError`` subclass with a message that names the file and, where known, the
line, YAML path or row. The CLI turns these into one line and exit code 1; anything
else is a bug and keeps its traceback.
"""
from __future__ import annotations

from dataclasses import dataclass, field


class PipelineError(Exception):
    """Base class of every error a user can cause."""


class InputError(PipelineError):
    """An input file cannot be read (wrong format, undecodable, malformed)."""

    def __init__(self, path: object, message: str, *, line: int | None = None,
                 row: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.row = row
        self.reason = message
        where = self.path
        if line is not None:
            where += f", line {line}"
        if row is not None:
            where += f", row {row}"
        super().__init__(f"{where}: {message}")


@dataclass
class Problem:
    """One problem found while validating a configuration file."""

    path: str                 # YAML path such as "codes[2].rules.nl[0].kind"
    message: str
    line: int | None = None   # 1-based line in the file, when known

    def format(self, file: str) -> str:
        where = f"{file}:{self.line}" if self.line else file
        return f"{where}: {self.path}: {self.message}"


@dataclass
class ConfigError(PipelineError):
    """A configuration file (codebook, settings) has one or more problems.

    All problems are collected before raising so the user fixes them in one go.
    """

    file: str
    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        n = len(self.problems)
        head = f"{self.file}: {n} problem{'s' if n != 1 else ''} in the configuration"
        return head + "".join(f"\n  - {p.format(self.file)}" for p in self.problems)


class CodebookError(ConfigError):
    """The codebook YAML is invalid."""


class UsageError(PipelineError):
    """Bad command-line arguments or an impossible combination of options."""


class ModelError(PipelineError):
    """A trained model cannot be used (unsafe, corrupt, or trained on another codebook)."""


class ExchangeError(PipelineError):
    """A REFI-QDA file cannot be imported or exported safely."""


class ReviewError(PipelineError):
    """A review file cannot be imported."""


class EngineError(PipelineError):
    """A cluster could not run the work (unreachable, lost workers, other versions)."""


class LockError(PipelineError):
    """Another run is writing the same output folder."""


class ReportError(PipelineError):
    """The report notebook failed, or committed figures do not reproduce."""


def excerpt(text: str, limit: int = 40) -> str:
    """Return a short, single-line excerpt of transcript text for messages.

    Transcripts are personal data: logs and errors never carry more than this.
    """
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
