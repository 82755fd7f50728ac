"""Benchmark cases of fastops on dask arrays (``fastops bench --family dask``; not in --quick).

- ``logsumexp``: over the chunked axis 0 of a (131072, 4096) float32 array (2 GiB) in 8 chunks
  of 256 MiB along it: the block states and their tree merge of fastops.smooth.dask, on
  dask's threaded scheduler (the local default; each task one serial-sized kernel call, the
  tasks spread over the cores by dask).
- ``softmax``: the same array and axis: the state reduction, then one blockwise pass.

Each timed call builds the graph on the dask array (made in setup from the in-memory one, with
``dask.array.from_array(..., name=False)``: no hashing of its bytes) and computes it:
``compute()`` for logsumexp's (4096,) result, ``persist()`` for softmax's 2 GiB one (its
blocks stay where they were computed, as a pipeline keeps them; concatenating them into one
NumPy array would add a 2 GiB copy, 1.2 s here, that the in-memory call does not make).
Floor: the in-memory op's bytes (the input read once, the output written once).

Peers: ``numpy``, the NumPy reference on the in-memory array; ``numba``, fastops on the whole
in-memory array (target: the dask call within 1.5x of
it); ``dask``, the same computation in plain dask.array ops, the way a dask user writes it
(target: fastops >= 3x it): ``m = x.max(0); m + log(exp(x - m).sum(0))`` and
``exp(x - lse)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np

from .cases import Case, Impl, PeerSkipped, check_request, register_family
from .devices import installed, random_array
from .peers import numpy_peer
from .smooth import nbytes_floor

OPS: tuple[str, ...] = ("logsumexp", "softmax")
#: (shape, chunks along axis 0) per size; "quick" has none (a 2 GiB input takes longer to make
#: than --quick's whole minute).
_SHAPES: dict[str, tuple[tuple[tuple[int, int], int], ...]] = {
    "full": (((131072, 4096), 16384),),
    "quick": (),
    "tiny": (((96, 40), 32),),
}


def _inputs(backend: str, shape: tuple[int, int], rows: int, seed: int) -> tuple[Any, Any]:
    """(the dask array, the in-memory array it wraps): chunks of ``rows`` rows."""
    import dask.array as da

    x = random_array(backend, shape, "float32", seed)
    return da.from_array(x, chunks=(rows, shape[1]), name=False), x


def _run(op: str, result: Any) -> Any:
    """Compute a lazy result as the module docstring says (persist the per-element ones)."""
    return result.compute() if op == "logsumexp" else result.persist()


def _fastops_call(op: str, dx: Any, x: np.ndarray) -> Any:
    import fastops

    return _run(op, getattr(fastops, op)(dx, axis=0))


def _plain_dask_call(op: str, dx: Any, x: np.ndarray) -> Any:
    import dask.array as da

    m = dx.max(axis=0, keepdims=True)
    lse = m + da.log(da.exp(dx - m).sum(axis=0, keepdims=True))
    return _run(op, lse[0] if op == "logsumexp" else da.exp(dx - lse))


def _inmemory_call(op: str, dx: Any, x: np.ndarray) -> Any:
    import fastops

    return getattr(fastops, op)(x, axis=0)


#: The NumPy reference works on float64 copies with temporaries of the input's size: at 2 GiB
#: of float32 it needed more than the 24 GiB of the development VM (killed).
REFERENCE_LIMIT_BYTES = 256 << 20


def _reference_call(op: str, dx: Any, x: np.ndarray) -> Any:
    from fastops.smooth import reference

    if x.nbytes > REFERENCE_LIMIT_BYTES:
        raise PeerSkipped(f"the NumPy reference's float64 temporaries of a {x.nbytes >> 20} MiB "
                          "input do not fit in memory here")
    return getattr(reference, op)(x, axis=0)


def _peers(op: str, wanted: Sequence[str] | None) -> tuple[Impl, ...]:
    peers = []
    if wanted is None or "numpy" in wanted:
        peers.append(numpy_peer(partial(_reference_call, op),
                                "fastops.smooth.reference (NumPy), in memory", "cpu"))
    if wanted is None or "numba" in wanted:
        peers.append(Impl(name="numba", label=f"fastops.{op} in memory (the whole array)",
                          call=partial(_inmemory_call, op)))
    if wanted is None or "dask" in wanted:
        peers.append(Impl(name="dask", label="plain dask.array (max, exp, sum, log)",
                          call=partial(_plain_dask_call, op), slow=True))
    return tuple(peers)


def dask_cases(size: str = "full", backend: str = "numba",
               ops: Sequence[str] | None = None) -> list[Case]:
    """The dask-family cases of ``size`` (NumPy chunks; none for "cupy" yet, and none where
    dask is not installed)."""
    device = check_request("dask_cases", backend, ops, OPS)
    if device != "cpu" or not installed("dask"):
        return []
    shapes = _SHAPES["full"] if size == "quick" and ops else _SHAPES[size]
    cases = []
    for shape, rows in shapes:
        for op in tuple(ops) if ops else OPS:
            cases.append(Case(
                family="dask",
                op=op,
                shape=shape,
                dtype="float32",
                backend=backend,
                nbytes=nbytes_floor(op, shape[1], shape[0], 4),
                make_inputs=partial(_inputs, backend, shape, rows),
                impl=Impl(name="fastops", label=f"fastops.{op} on a dask array",
                          call=partial(_fastops_call, op)),
                peer_fn=partial(_peers, op),
                shape_label=f"{shape[0]}x{shape[1]} ax0 ch{rows}",
            ))
    return cases


register_family("dask", dask_cases, OPS)
