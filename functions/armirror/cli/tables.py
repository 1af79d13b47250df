"""Tables whose first column (an image, a consumer) is never split across lines.

People copy names out of tables into other commands, so a name stays whole: the other
columns fold to make room, and when even that cannot fit the terminal, each record is
printed on one line of its own (``name  field  field``) and the terminal wraps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.cells import cell_len
from rich.text import Text

if TYPE_CHECKING:
    from rich.console import Console

#: The narrowest a folding column may become (a short word, a number).
MIN_FOLD_WIDTH = 8
#: Space between columns (rich's padding on both sides and a rule), and at both edges.
GUTTER = 3
EDGES = 2


@dataclass(frozen=True)
class Column:
    header: str
    justify: str = "left"
    #: Never fold (numbers, short statuses): the column keeps its longest value's width.
    whole: bool = False


@dataclass(frozen=True)
class Cell:
    """A value and the rich style it is shown in (markup in values is never read)."""

    text: str
    style: str = ""


def _cell(value: str | Cell) -> Cell:
    return value if isinstance(value, Cell) else Cell(value)


def fits(columns: Sequence[Column], rows: Sequence[Sequence[str | Cell]], width: int) -> bool:
    """Whether the first column can keep every name whole with the rest folded."""
    need = 0
    for index, column in enumerate(columns):
        longest = max((cell_len(_cell(row[index]).text) for row in rows), default=0)
        longest = max(longest, cell_len(column.header))
        if index == 0 or column.whole:
            need += longest
        else:
            need += min(longest, max(MIN_FOLD_WIDTH, cell_len(column.header)))
    return need + GUTTER * (len(columns) - 1) + EDGES <= width


def print_table(
    console: Console,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str | Cell]],
    *,
    title: str | None = None,
    row_styles: Sequence[str] | None = None,
) -> None:
    """Print ``rows`` as a table, or one record per line where a table would split names."""
    if title:
        console.print(Text(title, style="bold"))
    if fits(columns, rows, console.width):
        _as_table(console, columns, rows, row_styles)
    else:
        _as_lines(console, columns, rows, row_styles)


def _as_table(
    console: Console,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str | Cell]],
    row_styles: Sequence[str] | None,
) -> None:
    from rich.table import Table

    table = Table(show_edge=False, header_style="bold")
    names = [cell_len(_cell(row[0]).text) for row in rows]
    for index, column in enumerate(columns):
        if index == 0:
            table.add_column(
                column.header,
                no_wrap=True,
                min_width=max([cell_len(column.header), *names]),
            )
        elif column.whole:
            table.add_column(column.header, justify=column.justify, no_wrap=True)  # type: ignore[arg-type]
        else:
            table.add_column(column.header, justify=column.justify, overflow="fold")  # type: ignore[arg-type]
    for number, row in enumerate(rows):
        cells = [_cell(value) for value in row]
        table.add_row(
            *(Text(cell.text, style=cell.style) for cell in cells),
            style=row_styles[number] if row_styles else None,
        )
    console.print(table)


def _as_lines(
    console: Console,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str | Cell]],
    row_styles: Sequence[str] | None,
) -> None:
    for number, row in enumerate(rows):
        cells = [_cell(value) for value in row]
        line = Text(cells[0].text, style=cells[0].style or "bold")
        for column, cell in zip(columns[1:], cells[1:], strict=True):
            if cell.text:
                line.append("  ")
                line.append(f"{column.header}: ", style="dim")
                line.append(cell.text, style=cell.style)
        if row_styles and row_styles[number]:
            line.stylize(row_styles[number])
        console.print(line, soft_wrap=True)
