"""The report's page and its Markdown twin, written side by side: whatever the HTML says, report.md says
too (a CI job posts it to a pull request). Each part of the page is a <section> no wider than a laptop
screen (1366 px): long cells wrap, plots scale down, nothing scrolls sideways."""
from __future__ import annotations

import html

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1180px;margin:auto;padding:0 1em;color:#222;font-size:14px}"
    "section{max-width:100%;overflow-wrap:anywhere}"
    "img{max-width:100%;height:auto;box-sizing:border-box;border:1px solid #ddd;margin:.5em 0}"
    "table{border-collapse:collapse;font-size:12.5px;max-width:100%;margin:.3em 0 .8em}"
    "td,th{border:1px solid #ccc;padding:2px 6px;vertical-align:top;overflow-wrap:anywhere}th{background:#f4f4f4}"
    ".decision{border-left:4px solid #2a6;background:#f3faf5;padding:.4em 1em;margin:.6em 0}"
    ".decision.none{border-color:#c60;background:#fdf6ee}.decision h3{margin:.2em 0}.decision ul{margin:.2em 0}"
    ".caption{color:#555;font-size:12.5px;margin-top:0}.emu{color:#a60}"
)


def md_cell(x) -> str:
    return str(x).replace("|", "/").replace("\n", " ")


def md_table(header, rows) -> list[str]:
    return (["| " + " | ".join(map(md_cell, header)) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(map(md_cell, r)) + " |" for r in rows] + [""])


def html_table(header, rows) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def drop_empty_columns(header, rows) -> tuple[list[str], list[list[str]]]:
    """Columns with no value in any row (price, power without datasheets) are left out."""
    keep = [i for i in range(len(header)) if any(str(r[i]).strip() for r in rows)]
    return [header[i] for i in keep], [[r[i] for i in keep] for r in rows]


class Doc:
    def __init__(self, title: str):
        self.h = [f"<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
                  f"<title>odbench report</title><style>{STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
        self.md = [f"# {title}", ""]
        self._open = False

    def section(self, sid: str) -> None:
        self.close()
        self.h.append(f"<section id='{html.escape(sid)}'>")
        self._open = True

    def close(self) -> None:
        if self._open:
            self.h.append("</section>")
            self._open = False

    def heading(self, level: int, text: str) -> None:
        self.h.append(f"<h{level}>{html.escape(text)}</h{level}>")
        self.md += [f"{'#' * level} {text}", ""]

    def para(self, text: str, cls: str = "") -> None:
        self.h.append(f"<p class='{cls}'>{html.escape(text)}</p>")
        self.md += [f"> {text}" if cls else text, ""]

    def table(self, header, rows, drop_empty: bool = True) -> None:
        if drop_empty:
            header, rows = drop_empty_columns(list(header), [list(r) for r in rows])
        self.h.append(html_table(header, rows))
        self.md += md_table(header, rows)

    def bullets(self, items: list[str]) -> None:
        self.h.append("<ul>" + "".join(f"<li>{html.escape(x[:300])}</li>" for x in items) + "</ul>")
        self.md += [f"- {x[:300]}" for x in items] + [""]

    def decision(self, title: str, lines: list[str], ties: list[str], ok: bool) -> None:
        """One model's answer: a headline, why, and the runners-up the data cannot separate from it."""
        items = "".join(f"<li>{html.escape(x)}</li>" for x in lines)
        tie = f"<p>{html.escape(ties[0])}</p>" if ties else ""
        self.h.append(f"<div class='decision{'' if ok else ' none'}'><h3>{html.escape(title)}</h3><ul>{items}</ul>{tie}</div>")
        self.md += [f"**{title}**", ""] + [f"- {x}" for x in lines] + ([f"- {ties[0]}"] if ties else []) + [""]

    def figure(self, plot, plots_dir) -> None:
        # One copy of each picture: report.html and report.md both point at plots/ beside them (share the folder)
        (plots_dir / f"{plot.id}.png").write_bytes(plot.png)
        self.h.append(f"<h3>{html.escape(plot.title)}</h3><img id='{plot.id}' class='plot' alt='{html.escape(plot.title)}' "
                      f"src='plots/{plot.id}.png'>")
        self.md += [f"### {plot.title}", "", f"![{plot.title}](plots/{plot.id}.png)", ""]
        if plot.caption:
            self.para(plot.caption, "caption")
        if plot.table:
            self.table(*plot.table, drop_empty=False)

    def text(self) -> tuple[str, str]:
        self.close()
        return "\n".join(self.h + ["</body></html>"]), "\n".join(self.md)
