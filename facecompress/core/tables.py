"""Plain-text tables for the summaries scripts print at the end of a run."""

from __future__ import annotations


def format_table(rows: list[dict], columns: list[str]) -> str:
    """Left-aligned first column, right-aligned numbers, one header line and a rule."""
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def line(values: list[str]) -> str:
        return "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths)))

    return "\n".join([line(columns), "  ".join("-" * w for w in widths)] + [line(r) for r in cells])
