"""Benchmark tooling of fastops: ``fastops bench``, the asv suites and their shared cases.

Modules:

- :mod:`~fastops.bench.cases`: :class:`Case`, the family registry (:func:`register_family`,
  :func:`get_cases`); op families register their cases here.
- :mod:`~fastops.bench.smooth`: the cases of the smooth family (memory-bound: % copy).
- :mod:`~fastops.bench.orthogonality`: the cases of the orthogonality family (GEMM-bound:
  each case carries ``floor_impl``, the GEMMs its method needs, reported as % GEMM).
- :mod:`~fastops.bench.roofline`: the measured copy bandwidth and floor times.
- :mod:`~fastops.bench.timing`: warm-up + median timing, host clock and CUDA events.
- :mod:`~fastops.bench.peers`: NumPy reference, scipy, torch (and torch autograd), cupyx,
  CPU-backend peers; a peer that cannot run a case by design raises :class:`PeerSkipped`.
- :mod:`~fastops.bench.runner`: runs cases into result rows; :mod:`~fastops.bench.report`
  prints them (rich or plain text), writes JSON and a PNG chart.
- :mod:`~fastops.bench.info`: machine, versions, threading layer, cache locations.

Importing this package imports NumPy only: never cupy, torch, scipy, rich or matplotlib.
"""

from .cases import SIZES, Case, Impl, PeerSkipped, family_names, get_cases, register_family

__all__ = ["SIZES", "Case", "Impl", "PeerSkipped", "family_names", "get_cases", "register_family"]
