"""The ``fastops`` console script: ``fastops bench``, ``fastops demo`` and ``fastops info``.

Imports stay inside the subcommands so that ``fastops --help`` is instant and nothing
(cupy, torch, rich, matplotlib) is imported before it is needed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from fastops.bench.quick import quick_help


def _split(values: Sequence[str] | None) -> list[str] | None:
    """``--op a,b --op c`` -> ``["a", "b", "c"]`` (None when not given)."""
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastops", description="fastops: fused numerical kernels (Numba CPU, CuPy GPU)."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    bench = sub.add_parser(
        "bench",
        help="time every op against the measured copy bandwidth and against peers",
        description=(
            "Measure the copy bandwidth of each device, then time every op on every shape, "
            "dtype and backend: median time, GB/s moved (inputs read once + outputs written "
            "once), % of the copy bandwidth, for GEMM-bound ops (orthogonality family) % of "
            "the time of the GEMMs they need (timed in the same run), and the speed-up over "
            "the NumPy reference, scipy.special, torch, torch autograd, cupyx, CuPy eager code "
            "and (GPU rows) "
            "the CPU backend, where installed."
        ),
    )
    bench.add_argument("--quick", action="store_true", help=quick_help())
    bench.add_argument(
        "--backend",
        choices=("numba", "cupy", "all"),
        default="all",
        help="backend(s) to time; 'all' (default) = every backend available here",
    )
    bench.add_argument(
        "--op",
        action="append",
        metavar="NAME",
        help="only these ops (repeat or comma-separate); naming an op also times it in "
        "--quick when --quick would leave it out",
    )
    bench.add_argument(
        "--family", action="append", metavar="NAME", help="only these op families (default: all)"
    )
    bench.add_argument(
        "--dtype", action="append", choices=("float16", "float32", "float64"),
        help="only these dtypes (float16: the smooth family's CPU cases)"
    )
    bench.add_argument(
        "--shape",
        action="append",
        metavar="LABEL",
        help='only the cases of these shapes, written as the tables print them, e.g. '
        '"4096x4096", "4096x4096 ax0" (comma-separated or repeated)',
    )
    bench.add_argument(
        "--peers",
        metavar="LIST",
        default=None,
        help="comma-separated peers to time: numpy,scipy,torch,torch_autograd,cupyx,cupy,numba "
        "(default: every installed one, and a line naming the missing ones; 'none' for "
        "fastops alone); naming one that is not installed is an error",
    )
    bench.add_argument(
        "--contend",
        type=int,
        metavar="N",
        default=0,
        help="time each CPU case quiet, quiet on one thread (fastops.threads(1)) and with N "
        "CPU-bound competitor processes running, in one run, and report contended / "
        "1-thread (target <= 1.3x) and, for small calls, contended / quiet (target <= 3x); "
        "fastops rows only (no peers, no --plot)",
    )
    bench.add_argument(
        "--idle-gap",
        type=float,
        metavar="SECONDS",
        default=None,
        help="idle sleep before each timed small call, outside the timed interval (default "
        "0.02: the calls come between other work, as in a pipeline; 0: back to back)",
    )
    bench.add_argument("--json", metavar="PATH", help="write machine info and every row as JSON")
    bench.add_argument("--plot", metavar="PATH.png", help="write a PNG chart (needs matplotlib)")
    bench.add_argument(
        "--plain",
        action="store_true",
        help="plain-text table and progress even if rich is installed",
    )
    # Hidden: small arrays, so the test suite can run the whole command in seconds.
    bench.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)

    demo = sub.add_parser(
        "demo",
        help="run a demo: 'langevin' samples a 2-D mixture of 8 Gaussians with "
        "annealed_langevin and gmm_score",
    )
    demo.add_argument("name", choices=("langevin",), help="the demo to run")
    demo.add_argument("--backend", choices=("numba", "cupy"), default=None,
                      help="numba (CPU) or cupy (GPU); default: cupy when a GPU is usable")
    demo.add_argument("--plot", metavar="PATH.png", help="draw the samples over the density")
    demo.add_argument("--particles", type=int, default=100_000, help="default 100000")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--progress", action="store_true", help="show a progress bar")

    info = sub.add_parser(
        "info", help="backends, versions, GPU, Numba threading layer, compile-cache locations"
    )
    info.add_argument("--json", action="store_true", help="print the information as JSON")
    return parser


class _PlainProgress:
    """Progress on stderr without rich: one line per finished case."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0

    def start(self, total: int) -> None:
        self.total = total

    def step(self, description: str, case_done: bool) -> None:
        if case_done:
            self.done += 1
            print(f"[{self.done}/{self.total}] {description}", file=sys.stderr, flush=True)


def check_output_path(path: str, option: str) -> None:
    """Raise ValueError unless ``path`` can be written: its folder exists and is writable,
    and it is not itself a folder (checked before any timing starts)."""
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise ValueError(f"{option} {path}: is a directory; give a file name")
    if not parent.is_dir():
        raise ValueError(f"{option} {path}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path}: the directory {parent} is not writable")
    if target.exists() and not os.access(target, os.W_OK):
        raise ValueError(f"{option} {path}: the file exists and is not writable")


def _check_bench_args(args: argparse.Namespace) -> list[str] | None:
    """Every usage check of ``fastops bench`` that can be made before timing (ValueError or
    ImportError with the message); returns the peers asked for (None: every installed one)."""
    from fastops.bench import report
    from fastops.bench.peers import check_peer_names

    if args.contend < 0:
        raise ValueError(f"--contend must be >= 1 competitor, got {args.contend}")
    if args.idle_gap is not None and not args.idle_gap >= 0:
        raise ValueError(f"--idle-gap must be >= 0 seconds, got {args.idle_gap}")
    if args.contend and args.plot:
        raise ValueError("--plot is not available with --contend (use --json)")
    if args.contend and args.peers is not None:
        raise ValueError("--contend times fastops alone: leave out --peers")
    if args.contend and args.backend == "cupy":
        raise ValueError("--contend times the CPU backend (numba): leave out --backend cupy")
    peers = _split([args.peers]) if args.peers is not None else None
    if peers == ["none"]:
        peers = []
    elif peers is not None:
        if not peers:
            raise ValueError("--peers needs peer names (or none)")
        check_peer_names(peers)
    if args.json:
        check_output_path(args.json, "--json")
    if args.plot:
        report.check_plot_available()
        check_output_path(args.plot, "--plot")
    return peers


def _bench(args: argparse.Namespace, argv: list[str]) -> int:
    from fastops.bench import report
    from fastops.bench.devices import installed, resolve_backends
    from fastops.bench.runner import run_bench

    try:
        peers = _check_bench_args(args)
    except (ValueError, ImportError) as exc:
        print(f"fastops bench: error: {exc}", file=sys.stderr)
        return 2
    backends, skipped = resolve_backends("numba" if args.contend else args.backend)
    if not backends:
        reasons = "; ".join(f"{b}: {r}" for b, r in skipped.items())
        print(f"fastops bench: error: no backend to run ({reasons})", file=sys.stderr)
        return 2
    size = "tiny" if args.tiny else ("quick" if args.quick else "full")
    use_rich = installed("rich") and not args.plain
    kwargs: dict[str, Any] = {
        "size": size,
        "families": _split(args.family),
        "ops": _split(args.op),
        "dtypes": args.dtype,
        "shapes": _split(args.shape),
        "idle_gap": args.idle_gap,
    }
    if args.contend:
        from fastops.bench.contention import run_contention

        def announce(pids: list[int]) -> None:
            print(f"started {len(pids)} competitor(s): pid {', '.join(map(str, pids))}",
                  file=sys.stderr, flush=True)

        runner: Any = partial(run_contention, args.contend, on_competitors=announce)
    else:
        runner = partial(run_bench, backend=args.backend, peers=peers)
    try:
        if use_rich:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            with Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            ) as progress:
                task = progress.add_task("fastops bench", total=None)

                def step(description: str, case_done: bool) -> None:
                    progress.update(task, description=description, advance=int(case_done))

                result = runner(
                    on_start=lambda n: progress.update(task, total=n), on_step=step, **kwargs
                )
        else:
            plain = _PlainProgress()
            result = runner(on_start=plain.start, on_step=plain.step, **kwargs)
    except ValueError as exc:  # unknown op / family: a usage error, not a crash
        print(f"fastops bench: error: {exc}", file=sys.stderr)
        return 2
    result.argv = ["fastops", *argv]
    report.render(result, sys.stdout, use_rich=use_rich)
    if args.json:
        report.write_json(result, args.json)
        print(f"wrote {args.json}")
    if args.plot:
        report.write_plot(result, args.plot)
        print(f"wrote {args.plot}")
    # A fastops failure (not a peer's) fails the command, so CI scripts notice.
    return 1 if any(r.error for r in result.rows) else 0


def _print_info(info: dict[str, Any]) -> None:
    v = info["versions"]
    print(f"fastops {info.get('fastops') or '(not installed: source tree)'}")
    print(f"python {info['python']} on {info['platform']}")
    print(f"CPU: {info['cpu']} ({info['logical_cpus']} logical CPUs)")
    print("packages:")
    for name, version in v.items():
        print(f"  {name:<11} {version or 'not installed'}")
    print("backends:")
    backends = info["backends"]
    if "error" in backends:
        print(f"  fastops.backends() failed: {backends['error']}")
    for name, b in backends.items():
        if isinstance(b, dict):
            state = "available" if b.get("available") else "unavailable"
            extra = f" {b['version']}" if b.get("version") else ""
            reason = f" ({b['reason']})" if b.get("reason") else ""
            print(f"  {name:<6} {state}{extra}{reason}")
    nt = info.get("numba_threading")
    if nt:
        layer = nt.get("layer") or f"none ({nt.get('layer_error')})"
        print(
            f"numba threading: layer {layer} (configured: {nt['configured_layer']}), "
            f"{nt['num_threads']} threads (NUMBA_NUM_THREADS={nt['NUMBA_NUM_THREADS']})"
        )
        print(
            f"fastops scheduling: serial below {nt['parallel_min_ns'] / 1e6:g} ms of estimated "
            f"single-thread work, else dynamic chunks of ~{nt['chunk_ns'] / 1e3:g} us on "
            f"{nt['num_threads']} threads (fastops.threads(n) / fastops.set_num_threads(n) to "
            "change, per calling thread)"
        )
    pools = info.get("thread_pools")
    if pools is None:
        print("native thread pools: unknown (pip install threadpoolctl to list BLAS / OpenMP)")
    else:
        for pool in pools:
            print(
                f"native thread pool: {pool['user_api']} {pool['internal_api']} "
                f"{pool.get('version') or ''} {pool['num_threads']} threads "
                f"({os.path.basename(pool['filepath'] or '')})"
            )
    env = info.get("threading_env") or {}
    listed = ", ".join(f"{k}={v}" for k, v in env.items()) or "none set"
    print(f"threading environment: {listed}")
    gpu = info["gpu"]
    if gpu.get("available"):
        print(
            f"GPU {gpu['device']}/{gpu['device_count']}: {gpu['name']}, "
            f"{gpu['memory_total_bytes'] / 2**30:.1f} GiB, compute capability "
            f"{gpu['compute_capability']}, CUDA runtime {gpu['cuda_runtime']}, "
            f"driver {gpu['cuda_driver']}"
        )
    else:
        print(f"GPU: none ({gpu.get('reason')})")
    caches = info["caches"]
    if caches.get("numba"):
        c = caches["numba"]
        print(f"numba cache: {c['dir'] or c['source']}")
    print(f"cupy kernel cache: {caches['cupy']['dir']} ({caches['cupy']['source']})")


def _info(args: argparse.Namespace) -> int:
    from fastops.bench.info import full_info

    info = full_info()
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        _print_info(info)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from fastops.bench.devices import backend_status
    from fastops.langevin import demo

    backend = args.backend
    if backend is None:
        backend = "cupy" if backend_status("cupy")[0] else "numba"
    ok, reason = backend_status(backend)
    if not ok:
        print(f"fastops demo: error: backend {backend} is not usable ({reason})", file=sys.stderr)
        return 2
    if args.particles < 1:
        print("fastops demo: error: --particles must be >= 1", file=sys.stderr)
        return 2
    if args.plot:  # before the sampler runs, not after a minute of it
        try:
            demo.check_plot_available()
            check_output_path(args.plot, "--plot")
        except (ValueError, ImportError) as exc:
            print(f"fastops demo: error: {exc}", file=sys.stderr)
            return 2
    result = demo.run(backend, args.particles, args.seed, args.progress)
    print(demo.report(result))
    if args.plot:
        demo.plot(result, args.plot)
        print(f"wrote {args.plot}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fastops`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.command == "bench":
        return _bench(args, argv)
    if args.command == "demo":
        return _demo(args)
    return _info(args)


if __name__ == "__main__":
    sys.exit(main())
