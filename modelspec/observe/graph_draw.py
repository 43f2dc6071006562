"""Drawing a `GraphView` as SVG or PNG.

Through graphviz's `dot` binary when it is on PATH (the picture users know from
`keras.utils.plot_model`); otherwise a built-in layered layout — each node's rank is
its longest path from an input, nodes in a rank ordered by their predecessors' mean
position — written as SVG directly, or as PNG through matplotlib. Both SVGs mark every
node `<g class="node"><title>id</title>` and every edge `<g class="edge"><title>a->b`,
as graphviz does, so tools (and tests) read either the same way.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from modelspec.observe.graph_view import GraphView

RENDERERS = ("auto", "graphviz", "builtin")
FORMATS = ("svg", "png")
_CHAR_W, _LINE_H, _PAD, _GAP_X, _GAP_Y = 7.2, 16, 10, 24, 44


class GraphError(ValueError):
    """A picture that cannot be made here (a format or renderer that is missing); the
    CLI prints it and exits 2."""


def render(view: GraphView, output: Path, *, renderer: str = "auto") -> Path:
    """Write `view` to `output` (.svg or .png, by suffix); returns the path."""
    fmt = Path(output).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise GraphError(f"{output}: the picture must be .svg or .png. Received: '.{fmt}'")
    dot = shutil.which("dot")
    if renderer == "graphviz" and dot is None:
        raise GraphError("--renderer graphviz: the `dot` binary is not on PATH (install graphviz)")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if dot is not None and renderer != "builtin":
        result = subprocess.run(
            [dot, f"-T{fmt}", "-o", str(output)],
            input=to_dot(view).encode(),
            capture_output=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise GraphError(f"dot failed: {result.stderr.decode(errors='replace').strip()}")
        return output
    layout = layered(view)
    if fmt == "svg":
        output.write_text(to_svg(view, layout), encoding="utf-8")
    else:
        _png(view, layout, output)
    return output


def _quoted(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(view: GraphView) -> str:
    """The graphviz source: boxes top to bottom, blocks filled, outputs doubled."""
    out = [
        f"digraph {_quoted(view.name)} {{",
        "  rankdir=TB;",
        '  node [shape=box, style="rounded", fontname="Helvetica", fontsize=11];',
    ]
    for node in view.nodes:
        style = {
            "input": ', style="rounded,filled", fillcolor="#e8f0fe"',
            "block": ', style="rounded,filled", fillcolor="#fef3e0"',
        }.get(node.kind, "")
        extra = ", peripheries=2" if node.output else ""
        label = _quoted("\n".join(node.lines))
        out.append(f"  {_quoted(node.id)} [label={label}{style}{extra}];")
    for src, dst in view.edges:
        out.append(f"  {_quoted(src)} -> {_quoted(dst)};")
    out.append("}")
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float


def layered(view: GraphView) -> dict[str, Box]:
    """Longest-path ranks top to bottom; within a rank, nodes sorted by the mean x of
    their predecessors (one sweep), each rank centred on the widest."""
    preds: dict[str, list[str]] = {n.id: [] for n in view.nodes}
    for src, dst in view.edges:
        preds[dst].append(src)
    rank: dict[str, int] = {}
    for node in view.nodes:  # graph order: predecessors come first
        rank[node.id] = 1 + max((rank[p] for p in preds[node.id] if p in rank), default=-1)
    sizes = {
        n.id: (2 * _PAD + _CHAR_W * max(len(line) for line in n.lines), 2 * _PAD + _LINE_H * 4)
        for n in view.nodes
    }
    rows: dict[int, list[str]] = {}
    for node in view.nodes:
        rows.setdefault(rank[node.id], []).append(node.id)
    boxes: dict[str, Box] = {}
    centre: dict[str, float] = {}
    y = _GAP_Y / 2
    widths = {r: sum(sizes[i][0] for i in ids) + _GAP_X * (len(ids) - 1) for r, ids in rows.items()}
    widest = max(widths.values(), default=0)
    for r in sorted(rows):
        ids = sorted(
            rows[r],
            key=lambda i: sum(centre[p] for p in preds[i]) / len(preds[i]) if preds[i] else 0,
        )
        x = _GAP_X + (widest - widths[r]) / 2
        height = max(sizes[i][1] for i in ids)
        for i in ids:
            w, h = sizes[i]
            boxes[i] = Box(x, y, w, h)
            centre[i] = x + w / 2
            x += w + _GAP_X
        y += height + _GAP_Y
    return boxes


def _canvas(view: GraphView, boxes: dict[str, Box]) -> tuple[float, float]:
    """Width and height of the picture: the boxes, and the curves that bend right."""
    right = [b.x + b.w for b in boxes.values()]
    for src, dst in view.edges:
        a, b = boxes[src], boxes[dst]
        right.append(max(a.x + a.w / 2, b.x + b.w / 2) + _bend(a, b))
    height = max((b.y + b.h for b in boxes.values()), default=0) + _GAP_Y / 2
    return max(right, default=0) + _GAP_X, height


def _curve(a: Box, b: Box):
    """The edge from `a` to `b` as a matplotlib cubic Bezier path (the SVG's curve)."""
    from matplotlib.path import Path as Curve

    x1, y1, x2, y2, bend = a.x + a.w / 2, a.y + a.h, b.x + b.w / 2, b.y, _bend(a, b)
    points = [(x1, y1), (x1 + bend, y1 + _GAP_Y), (x2 + bend, y2 - _GAP_Y), (x2, y2)]
    return Curve(points, [Curve.MOVETO, Curve.CURVE4, Curve.CURVE4, Curve.CURVE4])


def _bend(a: Box, b: Box) -> float:
    """Sideways offset of the curve from `a` to `b`: 0 between adjacent ranks, else
    enough to pass beside the boxes of the ranks skipped."""
    if b.y - (a.y + a.h) <= _GAP_Y + 1:
        return 0.0
    return 0.7 * max(a.w, b.w) + _GAP_X


def to_svg(view: GraphView, boxes: dict[str, Box]) -> str:
    """A standalone SVG of the built-in layout."""
    width, height = _canvas(view, boxes)
    fill = {"input": "#e8f0fe", "block": "#fef3e0", "layer": "#ffffff"}
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}">',
        f"<title>{escape(view.name)}</title>",
        '<defs><marker id="arrow" markerWidth="10" markerHeight="8" refX="10" refY="4" '
        'orient="auto"><path d="M0,0 L10,4 L0,8 z" fill="#444"/></marker></defs>',
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',
    ]
    for src, dst in view.edges:
        a, b = boxes[src], boxes[dst]
        x1, y1, x2, y2 = a.x + a.w / 2, a.y + a.h, b.x + b.w / 2, b.y
        bend = _bend(a, b)  # an edge skipping ranks curves around the boxes between
        out.append(
            f'<g class="edge"><title>{escape(src)}-&gt;{escape(dst)}</title>'
            f'<path d="M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1 + _GAP_Y:.1f} '
            f'{x2 + bend:.1f},{y2 - _GAP_Y:.1f} {x2:.1f},{y2:.1f}" stroke="#444" '
            'fill="none" marker-end="url(#arrow)"/></g>'
        )
    for node in view.nodes:
        b = boxes[node.id]
        stroke = ' stroke-width="3"' if node.output else ""
        out.append(
            f'<g class="node"><title>{escape(node.id)}</title>'
            f'<rect x="{b.x:.1f}" y="{b.y:.1f}" width="{b.w:.1f}" height="{b.h:.1f}" rx="6" '
            f'fill="{fill[node.kind]}" stroke="#333"{stroke}/>'
        )
        for k, line in enumerate(node.lines):
            weight = ' font-weight="bold"' if k == 0 else ""
            out.append(
                f'<text x="{b.x + b.w / 2:.1f}" y="{b.y + _PAD + _LINE_H * (k + 0.75):.1f}" '
                f'text-anchor="middle" font-family="Helvetica, Arial, sans-serif" '
                f'font-size="12"{weight}>{escape(line)}</text>'
            )
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _png(view: GraphView, boxes: dict[str, Box], output: Path) -> None:
    """The built-in layout drawn by matplotlib (the `plot` extra)."""
    try:
        import matplotlib
    except ImportError:
        raise GraphError(
            "a PNG needs graphviz (`dot` on PATH) or matplotlib (pip install "
            "'modelspec[plot]'); or write an .svg"
        ) from None
    matplotlib.use("Agg", force=True)
    from matplotlib import patches
    from matplotlib import pyplot as plt

    width, height = _canvas(view, boxes)
    dpi = 100
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    fill = {"input": "#e8f0fe", "block": "#fef3e0", "layer": "#ffffff"}
    for src, dst in view.edges:
        a, b = boxes[src], boxes[dst]
        arrow = patches.FancyArrowPatch(
            path=_curve(a, b), arrowstyle="-|>", mutation_scale=12, color="#444"
        )
        ax.add_patch(arrow)
    for node in view.nodes:
        b = boxes[node.id]
        ax.add_patch(
            patches.FancyBboxPatch(
                (b.x, b.y),
                b.w,
                b.h,
                boxstyle="round,pad=0,rounding_size=6",
                facecolor=fill[node.kind],
                edgecolor="#333",
                linewidth=2.5 if node.output else 1,
            )
        )
        for k, line in enumerate(node.lines):
            ax.text(
                b.x + b.w / 2,
                b.y + _PAD + _LINE_H * (k + 0.5),
                line,
                ha="center",
                va="center",
                fontsize=8.5,
                fontweight="bold" if k == 0 else "normal",
            )
    fig.savefig(output, dpi=dpi, format="png", facecolor="white")
    plt.close(fig)
