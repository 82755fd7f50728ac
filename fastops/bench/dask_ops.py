"""Benchmark cases of fastops on dask arrays (``fastops bench --family dask``; not in --quick).

- ``logsumexp``: over the chunked axis 0 of a (131072, 4096) float32 array (2 GiB) in 8 chunks
  of 256 MiB along it: the block states and their tree merge of fastops.smooth.dask, on
  dask's threaded scheduler (the local default; each task one serial-sized kernel call, the
  tasks spread over the cores by dask).
- ``softmax``: the same array and axis: the state reduction, then one blockwise pass.
- ``ortho_frobenius``: ``orthogonality_penalty_and_grad`` of a (1048576, 256) float32 W (1 GiB)
  chunked along d in 8 blocks: the Gram as a tree sum of the blocks' Grams, the gradient
  blockwise (the issue's (2^22, 256) is 4 GiB and about 10 s of GEMMs per call on 2 cores).

Each timed call builds the graph on the dask array (made in setup from the in-memory one, with
``dask.array.from_array(..., name=False)``: no hashing of its bytes) and computes it:
``compute()`` for logsumexp's (4096,) result, ``persist()`` for softmax's 2 GiB one (its
blocks stay where they were computed, as a pipeline keeps them; concatenating them into one
NumPy array would add a 2 GiB copy, 1.2 s here, that the in-memory call does not make).
Floor: the in-memory op's bytes (the input read once, the output written once).

Peers: ``numpy``, the NumPy reference on the in-memory array; ``numba``, fastops on the whole
in-memory array (target: the dask call within 1.5x of
it); ``dask``, the same computation in plain dask.array ops, the way a dask user writes it
(target: fastops >= 3x it): ``m = x.max(0); m + log(exp(x - m).sum(0))``, ``exp(x - lse)``,
``G = W.T @ W; A = G - I; ((A ** 2).sum(), 4 W @ A)``.
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

#: op -> (shape, rows per chunk) per size; "quick" has none (a 2 GiB input takes longer to
#: make than --quick's whole minute).
_SHAPES: dict[str, dict[str, tuple[tuple[int, int], int]]] = {
    "full": {"logsumexp": ((131072, 4096), 16384), "softmax": ((131072, 4096), 16384),
             "ortho_frobenius": ((1048576, 256), 131072)},
    "quick": {},
    "tiny": {"logsumexp": ((96, 40), 32), "softmax": ((96, 40), 32),
             "ortho_frobenius": ((300, 16), 64)},
}
OPS: tuple[str, ...] = tuple(_SHAPES["full"])


def _inputs(backend: str, shape: tuple[int, int], rows: int, seed: int) -> tuple[Any, Any]:
    """(the dask array, the in-memory array it wraps): chunks of ``rows`` rows."""
    import dask.array as da

    x = random_array(backend, shape, "float32", seed)
    if shape[1] < shape[0] // 16:  # a kernel W: columns of norm about 1, as a trained layer's
        x *= np.float32(1.0 / np.sqrt(shape[0]))
    return da.from_array(x, chunks=(rows, shape[1]), name=False), x


def _fastops_call(op: str, dx: Any, x: np.ndarray) -> Any:
    import dask

    import fastops

    if op == "ortho_frobenius":  # the penalty computed, the gradient's blocks kept
        value, grad = fastops.orthogonality_penalty_and_grad(dx)
        return dask.persist(value, grad)
    result = getattr(fastops, op)(dx, axis=0)
    return result.compute() if op == "logsumexp" else result.persist()


def _plain_dask_call(op: str, dx: Any, x: np.ndarray) -> Any:
    import dask
    import dask.array as da

    if op == "ortho_frobenius":
        A = dx.T @ dx - np.eye(dx.shape[1], dtype=dx.dtype)
        return dask.persist((A * A).sum(), 4.0 * (dx @ A))
    m = dx.max(axis=0, keepdims=True)
    lse = m + da.log(da.exp(dx - m).sum(axis=0, keepdims=True))
    return lse[0].compute() if op == "logsumexp" else da.exp(dx - lse).persist()


def _inmemory_call(op: str, dx: Any, x: np.ndarray) -> Any:
    import fastops

    if op == "ortho_frobenius":
        return fastops.orthogonality_penalty_and_grad(x)
    return getattr(fastops, op)(x, axis=0)


#: The NumPy reference works on float64 copies with temporaries of the input's size: at 2 GiB
#: of float32 it needed more than the 24 GiB of the development VM (killed).
REFERENCE_LIMIT_BYTES = 256 << 20


def _reference_call(op: str, dx: Any, x: np.ndarray) -> Any:
    if x.nbytes > REFERENCE_LIMIT_BYTES:
        raise PeerSkipped(f"the NumPy reference's float64 temporaries of a {x.nbytes >> 20} MiB "
                          "input do not fit in memory here")
    if op == "ortho_frobenius":
        from fastops.orthogonality import reference as ortho_reference

        return ortho_reference.orthogonality_penalty_and_grad(x)
    from fastops.smooth import reference

    return getattr(reference, op)(x, axis=0)


def _peers(op: str, wanted: Sequence[str] | None) -> tuple[Impl, ...]:
    peers = []
    plain = "dask.array matmul" if op == "ortho_frobenius" else "max, exp, sum, log"
    family = "orthogonality" if op == "ortho_frobenius" else "smooth"
    fn = "orthogonality_penalty_and_grad" if op == "ortho_frobenius" else op
    if wanted is None or "numpy" in wanted:
        peers.append(numpy_peer(partial(_reference_call, op),
                                f"fastops.{family}.reference (NumPy), in memory", "cpu"))
    if wanted is None or "numba" in wanted:
        peers.append(Impl(name="numba", label=f"fastops.{fn} in memory (the whole array)",
                          call=partial(_inmemory_call, op)))
    if wanted is None or "dask" in wanted:
        peers.append(Impl(name="dask", label=f"plain dask.array ({plain})",
                          call=partial(_plain_dask_call, op), slow=True))
    return tuple(peers)


def _nbytes(op: str, shape: tuple[int, int]) -> int:
    if op == "ortho_frobenius":  # read W (twice: Gram, gradient GEMM), write the gradient
        return 3 * shape[0] * shape[1] * 4
    return nbytes_floor(op, shape[1], shape[0], 4)


def dask_cases(size: str = "full", backend: str = "numba",
               ops: Sequence[str] | None = None) -> list[Case]:
    """The dask-family cases of ``size`` (NumPy chunks; none for "cupy" yet, and none where
    dask is not installed)."""
    device = check_request("dask_cases", backend, ops, OPS)
    if device != "cpu" or not installed("dask"):
        return []
    table = _SHAPES["full"] if size == "quick" and ops else _SHAPES[size]
    cases = []
    for op in tuple(ops) if ops else OPS:
        if op not in table:
            continue
        shape, rows = table[op]
        axis_label = "" if op == "ortho_frobenius" else " ax0"
        cases.append(Case(
            family="dask",
            op=op,
            shape=shape,
            dtype="float32",
            backend=backend,
            nbytes=_nbytes(op, shape),
            make_inputs=partial(_inputs, backend, shape, rows),
            impl=Impl(name="fastops", label=f"fastops.{op} on a dask array",
                      call=partial(_fastops_call, op)),
            peer_fn=partial(_peers, op),
            shape_label=f"{shape[0]}x{shape[1]}{axis_label} ch{rows}",
        ))
    return cases


register_family("dask", dask_cases, OPS)
