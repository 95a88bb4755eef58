"""Type stubs of the extension module under `verdict` (rollouts and scores as JSON text)."""

from os import PathLike
from typing import Optional, Sequence, Union

__version__: str

class VerdictError(Exception):
    """Base class of verdict's errors."""

class ServiceError(VerdictError):
    """A call to a verdict service failed; `args` is (code, message)."""

class DeadlineExceeded(ServiceError):
    """A call to a verdict service did not finish within its timeout."""

class Scorer:
    """The whole chain in this process, sandbox included."""

    def __init__(
        self,
        config: Optional[Union[str, PathLike[str]]] = None,
        *,
        toml: Optional[str] = None,
        jobs: Optional[int] = None,
    ) -> None: ...
    @property
    def origin(self) -> str: ...
    def steps(self) -> list[tuple[str, str]]: ...
    def score_json(self, rollout: str) -> str: ...
    def score_batch_json(self, rollouts: list[str]) -> list[str]: ...

class Client:
    """A client of `verdict serve` replicas (gRPC): retries, deadlines, load balancing."""

    def __init__(
        self,
        endpoints: Union[str, Sequence[str]],
        *,
        timeout: float = 300.0,
        retries: int = 5,
        connect_timeout: float = 5.0,
    ) -> None: ...
    def endpoints(self) -> list[str]: ...
    def score_json(self, rollout: str) -> str: ...
    def score_batch_json(self, rollouts: list[str]) -> list[str]: ...

def rollout_from_fields(id: str, prompt: str, completion: str, fields: str) -> str: ...
def verl_fields(ground_truth: str, extra_info: Optional[str] = None) -> str: ...
def invalid_score(id: str, position: int, message: str) -> str: ...
def error_score(id: str, reason: str) -> str: ...
def serve_sandbox_worker() -> None: ...
