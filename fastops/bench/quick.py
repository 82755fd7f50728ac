"""What ``fastops bench --quick`` times and what it leaves out, in words.

One place for the text of ``--help`` and of the report's footer (this module imports nothing,
so ``fastops --help`` stays instant). ``tests/test_bench.py`` checks it against the cases
``get_cases("quick", ...)`` builds.

--quick is meant to finish within a minute on a two-core laptop with an empty Numba cache,
where each op and dtype is a Numba compilation of 1-7 s: it keeps the rows the README's
targets are about, one dtype per family, and the small calls.
"""

from __future__ import annotations

#: What --quick times on the CPU, per family.
QUICK_CPU: dict[str, str] = {
    "langevin": "langevin_step on 2^24 float32 elements",
    "orthogonality": "ortho_frobenius on (4096, 256) float32",
    "rank_one": "expm_rank1_apply on (65536, 64) float64",
    "smooth": "logsumexp, softmax, log_softmax on (4096, 4096) float32",
    "small calls": "logsumexp and softmax of (64, 128), orthogonality_penalty_and_grad of "
    "(256, 64), langevin_step of 4096 elements, float32",
}

#: What --quick leaves out on the CPU (one line of the report's footer).
QUICK_CPU_LEAVES_OUT = (
    "--quick leaves out (CPU): float64 and float16 (float32 for rank_one); smooth_max, "
    "soft_argmax, the backward ops, the (1048576, 16), (8, 2097152) shapes, the layouts "
    "cases (axis 0, F order, middle axis) and the NumPy reference peer of the (4096, 4096) rows; "
    "ortho_offdiag, ortho_spectral, "
    "ortho_model, SOM, spectral_norm and the (4096, 4096), (65536, 512), (512, 65536), "
    "(256, 64, 64) shapes; expm_rank1, expm_rank1_chain_apply; random_normal, gmm_score and the "
    "demo run (fastops demo langevin); the torch family (fastops bench --family torch); name an "
    "op with --op to time it"
)

#: What --quick times on the GPU (NVRTC compiles in milliseconds, so it keeps more).
QUICK_GPU = (
    "smooth: the forward ops and softmax/log_softmax_backward at (65536, 1024) plus logsumexp "
    "at (16777216, 16) and (64, 1048576); orthogonality: ortho_frobenius on (4096, 4096) and "
    "(256, 64, 64), the 50-kernel list, SOM on (1024, 512), spectral_norm on (4096, 4096); "
    "rank_one: 4096 x (64, 64), (1048576, 64), (1024, 4096), L = 32 on (1048576, 64); "
    "langevin: langevin_step and random_normal on 2^28, gmm_score (1e6, 64, 64), the demo "
    "run; all float32"
)


def quick_help() -> str:
    """The ``--quick`` help text of ``fastops bench``."""
    cpu = "; ".join(f"{family}: {what}" for family, what in QUICK_CPU.items())
    return (
        "a subset that finishes within a minute on a two-core laptop, compilation included. "
        f"CPU: {cpu}. GPU: {QUICK_GPU}. {QUICK_CPU_LEAVES_OUT}."
    )
