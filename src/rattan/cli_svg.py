"""``rattan graph ID --format svg``: the run's graph drawn as a standalone SVG image, with no
Graphviz or browser needed (the Mermaid and dot formats need one of them to become a picture).

Layout: nodes in columns by their longest distance from the start (flows that close a loop are
left out of that count), in each column in the order the tree lists them; a subprocess's nodes
inside a framed box with its name and state. Colours are the states' (``cli_show.COLOURS``).
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rattan.cli_show import Drawing

COL, ROW = 190, 90  # distance between columns and rows
BOX_W, BOX_H, RADIUS = 150, 50, 22  # an activity's box, an event's circle
PAD = 30  # margin, and a subprocess frame's padding around its nodes
NOT_REACHED_COLOURS = ("#ffffff", "#9ca3af")


def _columns(drawing: Drawing) -> dict[str, int]:
    """node id -> column: the longest path from a node with no incoming flow, loops cut."""
    after: dict[str, list[str]] = {n: [] for n in drawing.nodes}
    before: dict[str, int] = dict.fromkeys(drawing.nodes, 0)
    seen: set[str] = set()
    on_path: set[str] = set()
    forward: list[tuple[str, str]] = []

    def visit(node: str) -> None:  # depth first, keeping the flows that do not close a loop
        seen.add(node)
        on_path.add(node)
        for source, target, _ in drawing.edges:
            if source == node and target in drawing.nodes:
                if target in on_path:
                    continue
                forward.append((source, target))
                if target not in seen:
                    visit(target)
        on_path.discard(node)

    for node in drawing.nodes:
        if node not in seen:
            visit(node)
    for source, target in dict.fromkeys(forward):
        after[source].append(target)
        before[target] += 1
    column = dict.fromkeys(drawing.nodes, 0)
    ready = [n for n in drawing.nodes if before[n] == 0]
    while ready:
        node = ready.pop(0)
        for target in after[node]:
            column[target] = max(column[target], column[node] + 1)
            before[target] -= 1
            if before[target] == 0:
                ready.append(target)
    return column


def svg(drawing: Drawing, root_state: str, colours: dict[str, tuple[str, str]]) -> str:
    column = _columns(drawing)
    rows: dict[int, int] = {}
    place: dict[str, tuple[float, float]] = {}
    for node in drawing.nodes:  # the tree's order within a column
        col = column[node]
        row = rows.get(col, 0)
        rows[col] = row + 1
        place[node] = (PAD + BOX_W / 2 + col * COL, PAD + 40 + BOX_H / 2 + row * ROW)
    width = PAD * 2 + BOX_W + COL * max(column.values(), default=0)
    height = PAD * 2 + 40 + BOX_H + ROW * (max(rows.values(), default=1) - 1)
    root_id = drawing.clusters[0][0]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="12">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#4b5563"/></marker></defs>',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        f'<text x="{PAD}" y="{PAD + 4}" font-size="14" font-weight="bold">'
        f"pipeline {escape(root_id)}: {escape(root_state)}</text>",
    ]
    for _, label, members, depth in drawing.clusters[1:]:  # subprocess frames, outer ones first
        inside = [place[m] for m in _all_members(drawing, members, depth)]
        if not inside:
            continue
        x0 = min(x for x, _ in inside) - BOX_W / 2 - PAD / 2
        y0 = min(y for _, y in inside) - BOX_H / 2 - PAD / 2 - 14
        x1 = max(x for x, _ in inside) + BOX_W / 2 + PAD / 2
        y1 = max(y for _, y in inside) + BOX_H / 2 + PAD / 2
        out.append(
            f'<rect x="{x0:.0f}" y="{y0:.0f}" width="{x1 - x0:.0f}" height="{y1 - y0:.0f}" rx="10" '
            f'fill="none" stroke="#94a3b8" stroke-dasharray="6 4"/>'
            f'<text x="{x0 + 8:.0f}" y="{y0 + 15:.0f}" fill="#475569">{escape(label)}</text>'
        )
    for source, target, text in drawing.edges:
        if source not in place or target not in place:
            continue
        (x0, y0), (x1, y1) = place[source], place[target]
        back = column[target] <= column[source]  # a loop: drawn as an arc below
        start, end = (x0 + BOX_W / 2, y0), (x1 - BOX_W / 2, y1)
        if back:
            dip = max(y0, y1) + ROW * 0.6
            d = (
                f"M{x0:.0f},{y0 + BOX_H / 2:.0f} C{x0:.0f},{dip:.0f} {x1:.0f},{dip:.0f} "
                f"{x1:.0f},{y1 + BOX_H / 2:.0f}"
            )
            mid = ((x0 + x1) / 2, dip - 4)
        else:
            d = f"M{start[0]:.0f},{start[1]:.0f} L{end[0]:.0f},{end[1]:.0f}"
            mid = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 - 6)
        out.append(f'<path d="{d}" fill="none" stroke="#4b5563" marker-end="url(#arrow)"/>')
        if text:
            out.append(
                f'<text x="{mid[0]:.0f}" y="{mid[1]:.0f}" text-anchor="middle" fill="#1f2937" '
                f'font-size="10">{escape(text[:40])}</text>'
            )
    for node, (shape, text, state) in drawing.nodes.items():
        x, y = place[node]
        fill, stroke = colours.get(state, NOT_REACHED_COLOURS)
        dash = ' stroke-dasharray="4 3"' if state not in colours else ""
        style = f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"{dash}'
        if shape == "event":
            out.append(f'<circle cx="{x:.0f}" cy="{y:.0f}" r="{RADIUS}" {style}/>')
        elif shape == "gateway":
            h = BOX_H / 2 + 4
            out.append(f'<path d="M{x:.0f},{y - h:.0f} L{x + h:.0f},{y:.0f} L{x:.0f},{y + h:.0f} '
                       f'L{x - h:.0f},{y:.0f} z" {style}/>')  # fmt: skip
        else:
            out.append(
                f'<rect x="{x - BOX_W / 2:.0f}" y="{y - BOX_H / 2:.0f}" width="{BOX_W}" height="{BOX_H}" '
                f'rx="6" {style}/>'
            )
        out.append(
            f'<text x="{x:.0f}" y="{y + BOX_H / 2 + 14:.0f}" text-anchor="middle">{escape(text[:28])}</text>'
            f'<text x="{x:.0f}" y="{y + 4:.0f}" text-anchor="middle" font-size="9" fill="#111827">'
            f"{escape(state)}</text>"
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _all_members(drawing: Drawing, members: list[str], depth: int) -> list[str]:
    """A cluster's nodes and those of the clusters inside it."""
    found = list(members)
    start = next(i for i, c in enumerate(drawing.clusters) if c[2] is members)
    for i in range(start + 1, len(drawing.clusters)):
        if drawing.clusters[i][3] <= depth:
            break
        found.extend(drawing.clusters[i][2])
    return found
