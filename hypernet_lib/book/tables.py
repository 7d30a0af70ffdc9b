"""HTML tables for the chapters."""
from __future__ import annotations

from typing import Iterable, Optional, Sequence

from ..analysis.memory import format_bytes
from ..analysis.published import PUBLISHED, Published
from ..analysis.schemes import calculator_rows
from ..data.tasks import FewShotData

__all__ = ["html_table", "calculator_html", "format_published", "published_table_html", "memory_disk_html", "split_table"]


def calculator_html(n_in: int, n_out: int, f: int = 3, n_z: int = 4, d: Optional[int] = None,
                    n_layers: int = 1, chunk: int = 16, title: Optional[str] = None) -> str:
    """The calculator's answer as an HTML table (used live by widgets and statically)."""
    rows = calculator_rows(n_in, n_out, f, n_z, d, n_layers, chunk)
    d_ = n_z if d is None else d
    head = title or (f"{n_layers} layer(s) of {n_in}→{n_out}, {f}×{f}; N_z = {n_z}, d = {d_}, "
                     f"tiles {chunk}×{chunk}")
    lines = [f"<table><caption>{head}</caption>",
             "<tr><th>scheme</th><th>parameters</th><th>ordinary / scheme</th><th>fp32 size</th></tr>"]
    for r in rows:
        if r["params"] is None:
            lines.append(f"<tr><td>{r['scheme']}</td><td colspan=3>{r['note']}</td></tr>")
        else:
            lines.append(f"<tr><td>{r['scheme']}</td><td style='text-align:right'>{r['params']:,}</td>"
                         f"<td style='text-align:right'>{r['ratio']:.3g}×</td>"
                         f"<td style='text-align:right'>{format_bytes(r['fp32_bytes'])}</td></tr>")
    lines.append("</table>")
    return "\n".join(lines)


def html_table(header: Sequence[str], rows: Iterable[Sequence], caption: Optional[str] = None,
                align: Optional[Sequence[str]] = None) -> str:
    import html as _html
    align = align or ["left"] + ["right"] * (len(header) - 1)
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{_html.escape(caption)}</caption>")
    out.append("<tr>" + "".join(f"<th>{_html.escape(h)}</th>" for h in header) + "</tr>")
    for r in rows:
        out.append("<tr>" + "".join(f"<td style='text-align:{a}'>{_html.escape(str(v))}</td>"
                                    for v, a in zip(r, align)) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def format_published(p: Published, n: Optional[float] = None) -> str:
    """A count written the way the paper prints it (``0.564 M``) or in full (``85,160,676``)."""
    if not isinstance(p, Published):
        raise ValueError(f"p must be a Published entry (e.g. PUBLISHED['wrn40_1_params']), got {type(p).__name__}")
    n = p.published * p.unit if n is None else n
    if p.unit == 1:
        return f"{int(round(n)):,}"
    return f"{n / p.unit:.{p.digits}f} M"


def published_table_html(rows: list[dict]) -> str:
    """The rows of :func:`published_table` as HTML."""
    _check_rows(rows, ("key", "what", "count", "diff", "rounds"), "published_table")
    for k, r in enumerate(rows):
        if r["key"] not in PUBLISHED:
            raise ValueError(f"rows[{k}] has key {r['key']!r}, not a published configuration; "
                             "pass the rows of published_table()")
    body = []
    for r in rows:
        p = PUBLISHED[r["key"]]
        body.append([r["what"], f"{r['count']:,}", format_published(p, r["count"]), format_published(p),
                     f"{r['diff']:+,.0f}", "yes" if r["rounds"] else "no"])
    return html_table(["configuration", "module", "rounded like the paper", "published",
                        "module − published", "same digits"], body)


def _check_rows(rows, keys: Sequence[str], made_by: str) -> None:
    """A ValueError naming the first row that is not a dict with ``keys`` (the rows ``made_by`` returns)."""
    for k, r in enumerate(rows):
        missing = [key for key in keys if key not in r] if isinstance(r, dict) else list(keys)
        if missing:
            raise ValueError(f"rows[{k}] lacks {', '.join(missing)}; pass the rows of {made_by}()")


def memory_disk_html(rows: list[dict]) -> str:
    """The rows of :func:`memory_disk_table` as HTML.

    Columns (short, so that the table fits a page): parameters, their fp32 bytes, the generated
    weights, what autograd keeps for the backward pass, the total of the three while generating,
    (on CUDA: the allocator's peak), the checkpoint's size on disk, and disk / fp32 parameter bytes.
    """
    _check_rows(rows, ("name", "params", "param_bytes", "generated_bytes", "saved_bytes", "total_bytes",
                       "disk_bytes"), "memory_disk_table")
    cuda = any("cuda_peak_bytes" in r for r in rows)
    body = [[r["name"], f"{r['params']:,}", format_bytes(r["param_bytes"]), format_bytes(r["generated_bytes"]),
             format_bytes(r["saved_bytes"]), format_bytes(r["total_bytes"])]
            + ([format_bytes(r["cuda_peak_bytes"]) if "cuda_peak_bytes" in r else "–"] if cuda else [])
            + [format_bytes(r["disk_bytes"]), f"{r['disk_bytes'] / r['param_bytes']:.3f}"] for r in rows]
    return html_table(["model", "params", "params (fp32)", "generated", "for backward", "total"]
                       + (["CUDA peak"] if cuda else [])
                       + ["on disk", "disk / fp32"], body)


def split_table(data: FewShotData) -> list[dict]:
    """Rows {'class', 'split'} for a table of which classes train and which test."""
    return ([{"class": data.names[c], "split": "train"} for c in data.train_classes]
            + [{"class": data.names[c], "split": "test"} for c in data.test_classes])
