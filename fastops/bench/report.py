"""Presenting a :class:`~fastops.bench.runner.BenchResult`: table, JSON, PNG chart.

rich and matplotlib are optional (the GPU image may lack them): without rich the table is
plain text, without matplotlib ``--plot`` fails with a message before any timing starts.
"""

from __future__ import annotations

import json
import math
import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

from .cases import Case
from .contention import (
    TARGET_SMALL_VS_QUIET,
    TARGET_VS_SINGLE_THREAD,
    ContentionResult,
)
from .devices import installed
from .peers import PEER_NAMES
from .quick import QUICK_CPU_LEAVES_OUT
from .runner import BenchResult, Plan, Row
from .timing import NOISY_SPREAD_PCT, Timing

#: Column titles of the speed-up table ("x" = fastops is that many times faster).
PEER_TITLES: dict[str, str] = {
    "numpy": "numpy",
    "scipy": "scipy",
    "torch": "torch",
    "torch_autograd": "autograd",
    "cupyx": "cupyx",
    "cupy": "cupy",
    "numba": "CPU",
    "dask": "dask",
}
#: More peer columns than this and the speed-up table is split by family (80 columns).
MAX_PEER_COLUMNS = 4

#: Op names shortened so that the tables fit 80 columns (the footer gives the rule).
_OP_ABBREVIATIONS: tuple[tuple[str, str], ...] = (
    ("_backward", " bwd"),
    ("expm_rank1_chain_apply", "rank1_chain"),
    ("expm_rank1_apply", "rank1_apply"),
    ("som_penalty_and_grad", "som_penalty"),
    ("annealed_langevin", "langevin demo"),
)


def short_op(op: str) -> str:
    """The op's name as the tables print it (``softmax_backward`` -> ``softmax bwd``)."""
    for long, short in _OP_ABBREVIATIONS:
        op = op.replace(long, short)
    return op


def short_dtype(dtype: str) -> str:
    """``float32`` -> ``f32``."""
    return dtype.replace("float", "f")


def format_time(seconds: float | None) -> str:
    """``1.23 ms`` style: three significant digits in a unit that keeps them readable."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_ratio(value: float | None) -> str:
    """A speed-up or slow-down as ``392x``, ``42.8x``, ``0.38x``."""
    if value is None or not math.isfinite(value):
        return "-"
    spec = ".0f" if value >= 100 else ".1f" if value >= 10 else ".2f"
    return f"{value:{spec}}x"


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:{spec}}{suffix}"


def spread_cell(timing: Timing | None) -> str:
    """The interquartile range as a % of the median, with ``!`` when it is over 20%."""
    if timing is None:
        return "-"
    return _fmt(timing.spread_pct, ".0f", "%") + (NOISY_MARK if timing.noisy else "")


NOISY_MARK = "!"
SMALL_CALL_MARK = " (idle)"


@dataclass
class TextTable:
    """A table as strings: the first ``labels`` columns are left-aligned labels."""

    title: str
    header: list[str]
    body: list[list[str]]
    labels: int = 3

    def widths(self) -> list[int]:
        """The width of each column: its longest cell or header."""
        return [max([len(h), *(len(line[i]) for line in self.body)])
                for i, h in enumerate(self.header)]

    def gap(self, width: int = 80) -> int:
        """Spaces between columns: two, or one where two would not fit ``width``."""
        widths = self.widths()
        return 2 if sum(widths) + 2 * (len(widths) - 1) <= width else 1


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


def _label_cells(case: Case, idle_gap: float, with_backend: bool) -> list[str]:
    shape = case.shape_str + (SMALL_CALL_MARK if case.small_call and idle_gap > 0 else "")
    cells = [short_op(case.op), shape, short_dtype(case.dtype)]
    return cells + [case.backend] if with_backend else cells


def _label_header(with_backend: bool) -> list[str]:
    return ["op", "shape", "dt"] + (["backend"] if with_backend else [])


def times_table(result: BenchResult) -> TextTable:
    """fastops' median, its spread and its fraction of the floors, one row per case.

    "% GEMM" appears only when some row has a GEMM floor, "backend" only when more than one
    backend ran.
    """
    gemm = has_gemm_floor(result.rows)
    with_backend = len({r.case.backend for r in result.rows}) > 1
    header = _label_header(with_backend) + ["time", "±IQR", "% copy"] + (["% GEMM"] * gemm)
    body = []
    for r in result.rows:
        line = _label_cells(r.case, result.idle_gap, with_backend)
        if r.error:
            line += ["error", "-", "-"] + ["-"] * gemm
        else:
            line += [format_time(r.time_s), spread_cell(r.timing), _fmt(r.pct_of_copy, ".0f", "%")]
            if gemm:
                line.append(_gemm_cell(r))
        body.append(line)
    return TextTable("fastops: median time per call", header, body, len(header) - 3 - gemm)


def _peer_cell(r: Row, name: str) -> str:
    peer = next((q for q in r.peers if q.name == name), None)
    if peer is None:
        return "-"
    if peer.error:
        return "error"
    if peer.skipped:
        return "skip"
    noisy = peer.timing is not None and peer.timing.noisy
    return format_ratio(r.speedup(name)) + (NOISY_MARK if noisy else "")


def speedup_tables(result: BenchResult) -> list[TextTable]:
    """fastops' speed-up over each peer (peer median / fastops median, the same settled
    medians as the times table), one table, or one per family when the peers of all families
    would not fit 80 columns; rows without any peer are left out."""
    rows = [r for r in result.rows if r.peers and not r.error]
    if not rows:
        return []
    with_backend = len({r.case.backend for r in result.rows}) > 1
    groups: list[tuple[str, list[Row]]] = [("", rows)]
    if len(peer_columns(rows)) > MAX_PEER_COLUMNS:
        families = list(dict.fromkeys(r.case.family for r in rows))
        groups = [(f, [r for r in rows if r.case.family == f]) for f in families]
    tables = []
    for family, group in groups:
        peers = peer_columns(group)
        header = _label_header(with_backend) + [PEER_TITLES[p] for p in peers]
        body = [
            _label_cells(r.case, result.idle_gap, with_backend) + [_peer_cell(r, p) for p in peers]
            for r in group
        ]
        title = "speed-up of fastops over each peer (peer time / fastops time)" + (
            f": {family}" if family else "")
        tables.append(TextTable(title, header, body, len(_label_header(with_backend))))
    return tables


def table_rows(result: BenchResult) -> tuple[list[str], list[list[str]]]:
    """Header and body of the times table followed by the speed-up columns, row by row (the
    two tables side by side, as one list per case; for tests and scripts)."""
    times = times_table(result)
    peers = peer_columns(result.rows)
    header = times.header + [PEER_TITLES[p] for p in peers]
    body = [
        line + ([_peer_cell(r, p) for p in peers] if not r.error else ["-"] * len(peers))
        for line, r in zip(times.body, result.rows, strict=True)
    ]
    return header, body


def summary_lines(result: BenchResult) -> list[str]:
    """The lines printed above the tables: machine, bandwidth, skipped backends, peers that
    are not installed."""
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
    missing = missing_peers_line(result.missing_peers)
    if missing:
        lines.append(missing)
    return lines


def missing_peers_line(missing: dict[str, str]) -> str:
    """``peers not installed: scipy (pip install scipy); torch, torch_autograd (pip install
    torch)``, or "" when none is missing."""
    by_hint: dict[str, list[str]] = {}
    for name, hint in missing.items():
        by_hint.setdefault(hint, []).append(name)
    if not by_hint:
        return ""
    groups = "; ".join(f"{', '.join(names)} ({hint})" for hint, names in by_hint.items())
    return f"peers not installed: {groups}"


def _short(error: str, limit: int = 300) -> str:
    """One line of an error for the table footer (the JSON keeps the whole message)."""
    line = " ".join(error.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def timing_note(size: str) -> str:
    """How each median was reached, and what the spread and its flag mean."""
    budget = Plan.for_size(size).fastops_budget
    return (
        "time: median of the timed calls after a warm-up call (compilation excluded), timed "
        f"until the median moved < {100 * budget.settle_tolerance:.0f}% over "
        f"{budget.settle_window} calls or the case's time budget ran out; ±IQR: "
        "interquartile range / median; "
        f"{NOISY_MARK} = spread over {NOISY_SPREAD_PCT:.0f}% (another process on the cores, "
        "page faults): trust that median only to its spread."
    )


def _rows_notes(result: Any) -> list[str]:
    """Footer lines both tables need: the small calls' idle gap, the abbreviated op names and
    what --quick leaves out."""
    lines = []
    if any(r.case.small_call for r in result.rows):
        lines.append(small_call_note(result.idle_gap))
    note = _abbreviation_note([r.case.op for r in result.rows])
    if note:
        lines.append(note)
    if result.size == "quick":
        lines.append(QUICK_CPU_LEAVES_OUT + ".")
    return lines


def small_call_note(idle_gap: float) -> str:
    """How the small calls were timed."""
    if idle_gap > 0:
        return (
            f"(idle): small call, timed after an idle sleep of {1e3 * idle_gap:.3g} ms before "
            "each call (outside the timed interval), as it comes between other work in a "
            "pipeline, so threads that went to sleep must wake; its peers likewise; the other "
            "rows back to back."
        )
    return "small calls timed back to back (--idle-gap 0), like every other row."


def _abbreviation_note(ops: Sequence[str]) -> str | None:
    used = [(long, short) for long, short in _OP_ABBREVIATIONS if any(long in op for op in ops)]
    if not used:
        return None
    return "op names shortened: " + ", ".join(f"{s.strip()} = {lg.strip('_')}" for lg, s in used)


def footer_lines(result: BenchResult) -> list[str]:
    """Notes below the tables: what the columns mean, errors, elapsed time."""
    lines = [
        timing_note(result.size),
        "% copy: bytes floor (inputs read once + outputs written once) at the measured copy "
        "bandwidth / time (GB/s in the JSON); speed-up: peer median / fastops median "
        f"(> 1: fastops faster; {NOISY_MARK}: the peer's spread is over "
        f"{NOISY_SPREAD_PCT:.0f}%).",
    ]
    if has_gemm_floor(result.rows):
        lines.append(
            "% GEMM (GEMM-bound ops): time of the BLAS calls the method needs, timed in the same "
            "run with the same BLAS (numpy.matmul on the CPU, cupy.matmul on the GPU: the Gram "
            "from the smaller side + the gradient product; + eigh for ortho_spectral; the two "
            "GEMVs for spectral_norm) / fastops time. Targets, value + gradient: within 1.3x of "
            "the GEMMs on the CPU (>= 77%), 1.25x on the GPU (>= 80%)."
        )
    lines += _rows_notes(result)
    unsettled = sum(
        1 for r in result.rows for t in [r.timing, *(p.timing for p in r.peers)]
        if t is not None and t.times and not t.settled
    )
    if unsettled:
        lines.append(
            f"{unsettled} timing(s) stopped at their time budget before the median settled "
            "(\"settled\": false in the JSON)."
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


# --------------------------------------------------------------------------------------------
# The contention table (fastops bench --contend N)
# --------------------------------------------------------------------------------------------


def contention_table(result: ContentionResult) -> TextTable:
    """Quiet, quiet single-thread and contended medians of each case, and the two ratios."""
    header = ["op", "shape", "dt", "quiet", "1 thread", "contended", "÷1 thr", "÷quiet"]
    body = []
    for r in result.rows:
        line = _label_cells(r.case, result.idle_gap, with_backend=False)
        if r.error:
            body.append(line + ["error"] + ["-"] * 4)
            continue
        for t in (r.quiet, r.single_thread, r.contended):
            mark = NOISY_MARK if t is not None and t.noisy else ""
            line.append(format_time(t.median if t is not None else None) + mark)
        over_single = r.vs_single_thread is not None and (
            r.vs_single_thread > TARGET_VS_SINGLE_THREAD)
        over_quiet = r.case.small_call and r.vs_quiet is not None and (
            r.vs_quiet > TARGET_SMALL_VS_QUIET)
        line.append(format_ratio(r.vs_single_thread) + (MISSED_MARK if over_single else ""))
        line.append(format_ratio(r.vs_quiet) + (MISSED_MARK if over_quiet else ""))
        body.append(line)
    title = f"fastops under contention: {result.competitors} busy process(es)"
    return TextTable(title, header, body)


MISSED_MARK = "*"


def contention_summary_lines(result: ContentionResult) -> list[str]:
    m = result.machine
    return [
        f"fastops bench --contend {result.competitors} ({result.size}) on {m.get('cpu', '?')}, "
        f"{m.get('logical_cpus')} CPUs, fastops on {result.threads} threads; competitor pids "
        + ", ".join(str(p) for p in result.competitor_pids)
    ]


def contention_footer_lines(result: ContentionResult) -> list[str]:
    lines = [
        f"quiet: no competitor, all {result.threads} threads; 1 thread: "
        "with fastops.threads(1) (and BLAS on one thread through threadpoolctl), no "
        f"competitor; contended: {result.competitors} CPU-bound processes (Python busy loops) "
        f"running, all {result.threads} threads; quiet and 1-thread phases first, then the "
        "contended phase, in this one run.",
        f"÷1 thr = contended / 1 thread (target <= {TARGET_VS_SINGLE_THREAD}x); ÷quiet = "
        f"contended / quiet (target for small calls <= {TARGET_SMALL_VS_QUIET:.0f}x); "
        f"{MISSED_MARK} = over its target.",
        timing_note(result.size),
        "peers are not timed under --contend (fastops rows only).",
    ]
    lines += _rows_notes(result)
    if result.competitors_exited_early:
        lines.append(
            f"warning: {result.competitors_exited_early} competitor(s) exited before the "
            "contended phase ended: some contended timings ran with fewer competitors."
        )
    for r in result.rows:
        if r.error:
            lines.append(f"error in {r.case.name}: {_short(r.error)}")
    lines.append(f"total {result.elapsed_s:.1f} s")
    return lines


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

#: Plain-text lines are wrapped to this width.
PLAIN_WIDTH = 80


def _plain_table(table: TextTable, file: IO[str]) -> None:
    header, body = table.header, table.body
    widths = table.widths()
    sep = " " * table.gap(PLAIN_WIDTH)

    def fmt(cells: list[str]) -> str:
        return sep.join(
            c.ljust(w) if i < table.labels else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    print(file=file)
    print(table.title, file=file)
    print(fmt(header), file=file)
    print(sep.join("-" * w for w in widths), file=file)
    for line in body:
        print(fmt(line), file=file)


def _plain_lines(lines: Sequence[str], file: IO[str]) -> None:
    for line in lines:
        print(textwrap.fill(line, PLAIN_WIDTH, subsequent_indent="  ",
                            break_on_hyphens=False), file=file)


def _render_plain(summary: Sequence[str], tables: Sequence[TextTable], footer: Sequence[str],
                  file: IO[str]) -> None:
    _plain_lines(summary, file)
    for table in tables:
        _plain_table(table, file)
    print(file=file)
    _plain_lines(footer, file)


def _render_rich(summary: Sequence[str], tables: Sequence[TextTable], footer: Sequence[str],
                 console: Any) -> None:
    from rich import box
    from rich.table import Table

    # markup=False: the lines hold literal brackets ("[numpy.copyto, ...]").
    for line in summary:
        console.print(line, highlight=False, markup=False)
    for t in tables:
        # No outer padding, and between columns SIMPLE_HEAD's blank divider plus one space of
        # padding (none where that would not fit), so that the tables fit 80 columns.
        padding = (0, 1, 0, 0) if t.gap(PLAIN_WIDTH) == 2 else 0
        table = Table(title=t.title, title_justify="left", title_style="bold",
                      box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=padding)
        for i, h in enumerate(t.header):
            table.add_column(h, justify="left" if i < t.labels else "right", no_wrap=True)
        for line in t.body:
            table.add_row(*line)
        console.print()
        console.print(table)
    console.print()
    for line in footer:
        console.print(line, highlight=False, markup=False, style="dim")


def bench_tables(result: BenchResult) -> list[TextTable]:
    """The times table and the speed-up table(s) of a bench run."""
    return [times_table(result), *speedup_tables(result)]


def render_plain(result: BenchResult | ContentionResult, file: IO[str]) -> None:
    """The results as fixed-width text tables (no rich needed)."""
    _render_plain(*_parts(result), file)


def render_rich(result: BenchResult | ContentionResult, console: Any) -> None:
    """The results as rich tables on ``console``."""
    _render_rich(*_parts(result), console)


def _parts(
    result: BenchResult | ContentionResult,
) -> tuple[list[str], list[TextTable], list[str]]:
    if isinstance(result, ContentionResult):
        return (contention_summary_lines(result), [contention_table(result)],
                contention_footer_lines(result))
    return summary_lines(result), bench_tables(result), footer_lines(result)


def render(
    result: BenchResult | ContentionResult, file: IO[str], use_rich: bool | None = None
) -> None:
    """Print the results: a rich table when rich is installed (and ``use_rich`` allows)."""
    if use_rich is None:
        use_rich = installed("rich")
    if use_rich:
        from rich.console import Console

        # A terminal's own width; redirected output (a log file, CI) 100 columns, so that the
        # footer's lines are not wrapped as narrowly as rich's 80-column default.
        isatty = getattr(file, "isatty", lambda: False)()
        render_rich(result, Console(file=file, width=None if isatty else 100))
    else:
        render_plain(result, file)


def write_json(result: BenchResult | ContentionResult, path: str | os.PathLike[str]) -> None:
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


class PlotUnavailable(ImportError):
    """--plot was asked for but matplotlib is not installed."""


def check_plot_available() -> None:
    """Raise :class:`PlotUnavailable` with an install hint when matplotlib is missing."""
    if not installed("matplotlib"):
        raise PlotUnavailable(
            "--plot needs matplotlib, which is not installed "
            "(pip install matplotlib, or pip install 'fastops-kernels[bench]', or "
            "pip install -e '.[bench]' in a fastops checkout)"
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
