"""A sandbox worker process: ``python -m verdict._worker``.

The in-process :class:`verdict.Scorer` runs its sandbox in worker processes started this way
(one per core, unless ``[sandbox.engine] workers`` says otherwise), so a rollout that brings a
worker down costs that rollout an ``error`` record, never the training process. The parent
passes the sandbox configuration in the environment and talks to the worker over its stdin and
stdout; nothing here is meant to be run by hand.
"""

from verdict import _native

if __name__ == "__main__":
    _native.serve_sandbox_worker()
