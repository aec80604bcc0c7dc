"""One hierarchy of errors for the whole kit.

Every error is a :class:`LocalMLError` and also the builtin it resembles, so
``except FileNotFoundError`` keeps working for callers who do not know the kit.
Each message says what happened and what to do next.

Example:
    >>> from localml_kit import errors
    >>> try:
    ...     raise errors.UnknownSampleError("no sample 'x'; known: a, b")
    ... except KeyError as exc:
    ...     print(type(exc).__name__)
    UnknownSampleError
"""

from __future__ import annotations

__all__ = [
    "BuildDependencyError",
    "ChecksumError",
    "ChildProcessFailedError",
    "ChildTimeoutError",
    "ClusterError",
    "ConfigError",
    "ConversionError",
    "DownloadError",
    "EngineRunError",
    "EnvironmentCreateError",
    "EnvironmentNotReadyError",
    "HubTimeoutError",
    "InputError",
    "LocalMLError",
    "LocalMLWarning",
    "ModelFormatError",
    "ModelNotFoundError",
    "NothingToQuantizeWarning",
    "OfflineError",
    "OptionalDependencyError",
    "OutputMismatchError",
    "ProfileRunError",
    "ProviderUnavailableError",
    "ResourceCapWarning",
    "SampleBuildError",
    "SampleNotReadyError",
    "ServiceError",
    "UnknownEnvironmentError",
    "UnknownProviderError",
    "UnknownSampleError",
    "UnknownSourceError",
    "UnsafeArchiveError",
]


class LocalMLError(Exception):
    """Base class of every error raised by localml-kit.

    ``cli`` is the same message in the command line's words (flags such as
    ``--dims seq=N`` where the Python message says ``dims={'seq': N}``); the
    command line prints it instead of the message when it is given.

    Example:
        >>> err = InputError("pass dims={'seq': N}", cli="pass --dims seq=N")
        >>> str(err), err.cli
        ("pass dims={'seq': N}", 'pass --dims seq=N')
    """

    def __init__(self, *args: object, cli: str | None = None) -> None:
        super().__init__(*args)
        self.cli = cli

    def __str__(self) -> str:
        # KeyError quotes its argument; keep messages readable for every subclass.
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class ConfigError(LocalMLError, ValueError):
    """A setting (an environment variable or an argument) with a value the kit cannot use."""


class UnknownSampleError(LocalMLError, KeyError):
    """A sample name that the registry does not know."""


class SampleNotReadyError(LocalMLError, FileNotFoundError):
    """A sample that has not been fetched (or whose cache entry is broken)."""


class OfflineError(LocalMLError, ConnectionError):
    """Something needs the network while offline mode is on or the network is unreachable."""


class DownloadError(LocalMLError, ConnectionError):
    """A download that failed: the index or hub did not answer, or refused."""


class HubTimeoutError(DownloadError, TimeoutError):
    """A Hub call that ran past its deadline (or a download that stopped moving) and was stopped."""


class ChecksumError(LocalMLError, ValueError):
    """A downloaded or extracted file whose sha256 differs from the expected one."""

    def __init__(self, path: str, expected: str, actual: str) -> None:
        super().__init__(
            f"sha256 mismatch for {path}: expected {expected}, got {actual}. "
            "The file was not used and has been removed; fetch again, and if it "
            "repeats, the source has changed: report it."
        )
        self.path = path
        self.expected = expected
        self.actual = actual


class UnsafeArchiveError(LocalMLError, ValueError):
    """An archive member whose path would land outside the destination folder."""


class SampleBuildError(LocalMLError, RuntimeError):
    """Building a sample from its source failed."""


class ConversionError(LocalMLError, RuntimeError):
    """Converting a model (GGUF -> Hugging Face -> ONNX Runtime GenAI, or carrying GGUF blocks) failed."""


class BuildDependencyError(LocalMLError, ImportError):
    """A package needed to build a sample is not installed."""


class ModelFormatError(LocalMLError, ValueError):
    """A file that is not a readable model of the expected format."""


class ProviderUnavailableError(LocalMLError, RuntimeError):
    """An execution provider that this ONNX Runtime build does not offer."""


class EngineRunError(LocalMLError, RuntimeError):
    """An engine other than ONNX Runtime (tract, onnxruntime-web) failed on the given inputs."""


class ModelNotFoundError(LocalMLError, FileNotFoundError):
    """A model path or sample name that does not lead to a model file."""


class UnknownProviderError(LocalMLError, ValueError):
    """An execution provider name that the kit does not know (the message lists the valid ones)."""


class InputError(LocalMLError, ValueError):
    """Model inputs that do not match the model: a wrong dtype or shape, or a dim left unresolved."""


class UnknownSourceError(LocalMLError, ValueError):
    """A model source name that the zoo does not know (the message lists the valid ones)."""


class UnknownEnvironmentError(LocalMLError, KeyError):
    """A provider environment name that the kit has no recipe for."""


class EnvironmentNotReadyError(LocalMLError, FileNotFoundError):
    """A provider environment that has not been created (or is broken)."""


class EnvironmentCreateError(LocalMLError, RuntimeError):
    """Creating a provider environment (a venv with another ONNX Runtime package) failed."""


class OptionalDependencyError(LocalMLError, ImportError):
    """A feature needs a package from an optional extra (e.g. matplotlib for plots)."""


class ProfileRunError(LocalMLError, RuntimeError):
    """A measurement that could not complete: the model failed to load, the worker crashed or hung."""


class ChildProcessFailedError(LocalMLError, RuntimeError):
    """A child process the kit started failed; the message carries the tail of its stderr."""


class ChildTimeoutError(LocalMLError, TimeoutError):
    """A child process the kit started ran past its time limit and was killed."""


class ClusterError(LocalMLError, ConnectionError):
    """A Dask cluster that cannot be reached, or that has no worker to run on."""


class ServiceError(LocalMLError, ConnectionError):
    """A local service (``serve.start``) that could not be reached, or did not answer in time."""


class OutputMismatchError(LocalMLError, ValueError):
    """Two models whose outputs cannot be compared: a name, shape or dtype differs (the message says which)."""


class LocalMLWarning(UserWarning):
    """Base class of every warning the kit gives (something worked, but not as asked)."""


class ResourceCapWarning(LocalMLWarning):
    """A requested resource (threads, memory) was capped to what this machine has."""


class NothingToQuantizeWarning(LocalMLWarning):
    """A model with no weights that the chosen method converts: the variant is an unchanged copy."""
