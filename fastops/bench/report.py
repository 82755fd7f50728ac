"""Presenting a :class:`~fastops.bench.runner.BenchResult`: table, JSON, PNG chart.

rich and matplotlib are optional (the GPU image may lack them): without rich the table is
plain text, without matplotlib ``--plot`` fails with a message before any timing starts.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from typing import IO, Any

from .devices import installed
from .peers import PEER_NAMES
from .runner import BenchResult, Row

#: Column titles of the speed-up columns ("x" = fastops is that many times faster).
PEER_TITLES: dict[str, str] = {
    "numpy": "x numpy",
    "scipy": "x scipy",
    "torch": "x torch",
    "torch_autograd": "x autograd",
    "cupyx": "x cupyx",
    "cupy": "x cupy",
    "numba": "x CPU",
}


def format_time(seconds: float | None) -> str:
    """``1.23 ms`` style: three significant digits in a unit that keeps them readable."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:{spec}}{suffix}"


def peer_columns(rows: Sequence[Row]) -> list[str]:
    """The peers measured in at least one row, in the canonical order."""
    present = {p.name for r in rows for p in r.peers}
    return [name for name in PEER_NAMES if name in present]


def has_gemm_floor(rows: Sequence[Row]) -> bool:
    """Whether some row is GEMM-bound (its case has a floor_impl): the "% GEMM" column."""
    return any(r.case.floor_impl is not None for r in rows)


def _gemm_cell(r: Row) -> str:
    if r.gemm is not None and r.gemm.error:
        return "error"
    return _fmt(r.pct_of_gemm_floor, ".0f", "%")


def table_rows(result: BenchResult) -> tuple[list[str], list[list[str]]]:
    """Header and body of the results table, as strings.

    "% GEMM" appears only when some row has a GEMM floor; a peer that skipped a case by
    design shows "skip" (its reason is in the footer), one that failed "error".
    """
    peers = peer_columns(result.rows)
    gemm = has_gemm_floor(result.rows)
    header = ["op", "shape", "dtype", "backend", "time", "GB/s", "% copy"]
    header += ["% GEMM"] if gemm else []
    header += [PEER_TITLES[p] for p in peers]
    body = []
    for r in result.rows:
        c = r.case
        line = [c.op, c.shape_str, c.dtype, c.backend]
        if r.error:
            line += ["error", "-", "-"] + ["-"] * (len(peers) + gemm)
        else:
            line += [format_time(r.time_s), _fmt(r.gbps, ".1f"), _fmt(r.pct_of_copy, ".0f", "%")]
            if gemm:
                line.append(_gemm_cell(r))
            for p in peers:
                peer = next((q for q in r.peers if q.name == p), None)
                if peer is not None and peer.error:
                    line.append("error")
                elif peer is not None and peer.skipped:
                    line.append("skip")
                else:
                    line.append(_fmt(r.speedup(p), ".2f", "x"))
        body.append(line)
    return header, body


def summary_lines(result: BenchResult) -> list[str]:
    """The lines printed above the table: machine, bandwidth, skipped backends."""
    m = result.machine
    lines = [f"fastops bench ({result.size}) on {m.get('cpu', '?')}, {m.get('logical_cpus')} CPUs"]
    gpu = m.get("gpu") or {}
    if gpu.get("available"):
        mem = gpu.get("memory_total_bytes", 0) / 2**30
        lines.append(f"GPU: {gpu.get('name')} ({mem:.0f} GiB), CUDA {gpu.get('cuda_runtime')}")
    for device, bw in result.bandwidth.items():
        lines.append(
            f"copy bandwidth ({device}, read + write): {bw.gbps:.1f} GB/s "
            f"[{bw.method}, {bw.array_bytes / 2**20:.0f} MiB arrays]"
        )
    for backend, reason in result.skipped_backends.items():
        lines.append(f"skipped backend {backend}: {reason}")
    return lines


def _short(error: str, limit: int = 300) -> str:
    """One line of an error for the table footer (the JSON keeps the whole message)."""
    line = " ".join(error.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def footer_lines(result: BenchResult) -> list[str]:
    """Notes below the table: what the columns mean, errors, elapsed time."""
    lines = [
        "time: median after a warm-up call (compilation excluded); GB/s: bytes floor (inputs "
        "read once + outputs written once) / time; % copy: floor time at the measured copy "
        "bandwidth / time; x peer: peer time / fastops time (> 1 = fastops faster).",
    ]
    if has_gemm_floor(result.rows):
        lines.append(
            "% GEMM (GEMM-bound ops): time of the BLAS calls the method needs, timed in the same "
            "run with the same BLAS (numpy.matmul on the CPU, cupy.matmul on the GPU: the Gram "
            "from the smaller side + the gradient product; + eigh for ortho_spectral; the two "
            "GEMVs for spectral_norm) / fastops time. Targets, value + gradient: within 1.3x of "
            "the GEMMs on the CPU (>= 77%), 1.25x on the GPU (>= 80%)."
        )
    for r in result.rows:
        if r.error:
            lines.append(f"error in {r.case.name}: {_short(r.error)}")
        if r.gemm is not None and r.gemm.error:
            lines.append(f"error in {r.case.name} GEMM floor: {_short(r.gemm.error)}")
        for p in r.peers:
            if p.error:
                lines.append(f"error in {r.case.name} peer {p.name}: {_short(p.error)}")
            if p.skipped:
                lines.append(f"skipped {r.case.name} peer {p.name}: {_short(p.skipped)}")
    lines.append(f"total {result.elapsed_s:.1f} s")
    return lines


def render_plain(result: BenchResult, file: IO[str]) -> None:
    """The results as a fixed-width text table (no rich needed)."""
    header, body = table_rows(result)
    widths = [
        max(len(h), *(len(line[i]) for line in body)) if body else len(h)
        for i, h in enumerate(header)
    ]
    numeric_from = 4  # left-align the labels, right-align the numbers

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < numeric_from else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    for line in summary_lines(result):
        print(line, file=file)
    print(fmt(header), file=file)
    print("  ".join("-" * w for w in widths), file=file)
    for line in body:
        print(fmt(line), file=file)
    for line in footer_lines(result):
        print(line, file=file)


def render_rich(result: BenchResult, console: Any) -> None:
    """The results as a rich table on ``console``."""
    from rich.table import Table

    header, body = table_rows(result)
    table = Table(title="fastops bench", title_justify="left")
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i < 4 else "right", no_wrap=True)
    for line in body:
        table.add_row(*line)
    # markup=False: the lines hold literal brackets ("[numpy.copyto, ...]").
    for line in summary_lines(result):
        console.print(line, highlight=False, markup=False)
    console.print(table)
    for line in footer_lines(result):
        console.print(line, highlight=False, markup=False, style="dim")


def render(result: BenchResult, file: IO[str], use_rich: bool | None = None) -> None:
    """Print the results: a rich table when rich is installed (and ``use_rich`` allows)."""
    if use_rich is None:
        use_rich = installed("rich")
    if use_rich:
        from rich.console import Console

        # Redirected output (a log file, CI) gets a width that fits every column instead of
        # rich's 80-column default, which would truncate the numbers.
        isatty = getattr(file, "isatty", lambda: False)()
        render_rich(result, Console(file=file, width=None if isatty else 160))
    else:
        render_plain(result, file)


def write_json(result: BenchResult, path: str | os.PathLike[str]) -> None:
    """Write the result (machine info, bandwidth, every row) as JSON.

    Non-finite numbers become null, so that the file is strict JSON.
    """

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    with open(path, "w", encoding="utf-8") as f:
        json.dump(clean(result.to_json()), f, indent=2)
        f.write("\n")


class PlotUnavailable(RuntimeError):
    """--plot was asked for but matplotlib is not installed."""


def check_plot_available() -> None:
    """Raise :class:`PlotUnavailable` with an install hint when matplotlib is missing."""
    if not installed("matplotlib"):
        raise PlotUnavailable(
            "--plot needs matplotlib, which is not installed "
            "(pip install matplotlib, or pip install 'fastops[bench]')"
        )


def write_plot(result: BenchResult, path: str | os.PathLike[str]) -> None:
    """A PNG with two panels: % of the copy bandwidth per case (bars coloured by backend, with
    the % of the GEMM floor as diamonds on GEMM-bound rows), and fastops' speed-up over each
    peer per case (log scale, 1x marked)."""
    check_plot_available()
    import matplotlib

    matplotlib.use("Agg")  # no display needed; must precede pyplot
    import matplotlib.pyplot as plt

    # Grouped by backend, in run order within a backend (the table's order).
    rows = sorted((r for r in result.rows if r.time_s), key=lambda r: r.case.backend)
    labels = [f"{r.case.op}\n{r.case.shape_str} f{r.case.dtype[5:]}" for r in rows]
    x = list(range(len(rows)))
    width = max(8.0, 0.45 * len(rows) + 2)
    fig, (ax_bw, ax_sp) = plt.subplots(2, 1, figsize=(width, 9), sharex=True)
    colours = {"numba": "tab:blue", "cupy": "tab:green"}
    for backend in sorted({r.case.backend for r in rows}):
        idx = [i for i, r in enumerate(rows) if r.case.backend == backend]
        ax_bw.bar(
            idx,
            [rows[i].pct_of_copy or 0.0 for i in idx],
            color=colours.get(backend, "tab:gray"),
            label=backend,
        )
    gemm_idx = [i for i, r in enumerate(rows) if r.pct_of_gemm_floor]
    if gemm_idx:  # GEMM-bound rows: their floor is the GEMM time, not the bytes
        ax_bw.scatter(
            gemm_idx,
            [rows[i].pct_of_gemm_floor for i in gemm_idx],
            color="black",
            marker="D",
            zorder=3,
            label="% of GEMM floor",
        )
    ax_bw.axhline(100, color="black", linewidth=0.8, linestyle="--")
    ax_bw.set_ylabel("% of copy bandwidth (bars), of GEMM time (diamonds)")
    ax_bw.legend(title="backend")
    floor = "memory-bandwidth floor" + (" or of the GEMM floor" if gemm_idx else "")
    ax_bw.set_title(f"fastops bench ({result.size}): fraction of the {floor}")

    peers = peer_columns(rows)
    bar_w = 0.8 / max(1, len(peers))
    for k, p in enumerate(peers):
        ys = [r.speedup(p) for r in rows]
        xs = [i - 0.4 + bar_w * (k + 0.5) for i in x]
        ax_sp.bar(
            [xv for xv, y in zip(xs, ys, strict=True) if y],
            [y for y in ys if y],
            width=bar_w,
            label=p,
        )
    ax_sp.axhline(1.0, color="black", linewidth=0.8)
    ax_sp.set_yscale("log")
    ax_sp.set_ylabel("speed-up of fastops (peer time / fastops time)")
    if peers:
        ax_sp.legend(title="over", ncols=min(len(peers), 5))
    ax_sp.set_xticks(x, labels, rotation=90, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
