"""``find`` results as one self-contained HTML page a person can open anywhere.

Every thumbnail is embedded as a ``data:`` URI (a JPEG of at most ``thumb_side`` pixels), the style
and the small script are inline, and nothing is fetched: the file can be mailed or archived.
Each group is a row of cards side by side, the keeper first and marked; each card shows the
file's size in pixels and bytes, its format and date, and why it is in the group (score, verdict,
evidence, and the file it was matched to). A card's "not a duplicate" box adds a
``lookalike review mark`` command to the box at the top; run those commands and later ``find``
runs keep the pair apart.
"""

from __future__ import annotations

import base64
import html
import os

from lookalike.config import DecodeLimits
from lookalike.decode import preview_jpeg, read_source
from lookalike.errors import FetchError, InputError
from lookalike.fingerprints import default_jobs
from lookalike.processes import worker_pool
from lookalike.scan import FindResult, Group, Member

__all__ = ["thumbnail_uri", "write_html"]

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.5em;margin:0 0 .3em}
table.stats td{padding:0 1em 0 0}
section.group{background:#fff;border:1px solid #ddd;border-radius:6px;margin:1em 0;padding:.6em .8em}
section.group h2{font-size:1.05em;margin:.1em 0 .5em}
.members{display:flex;flex-wrap:wrap;gap:.8em;align-items:flex-start}
figure.member{margin:0;width:230px;border:2px solid #ccc;border-radius:6px;padding:6px;background:#fff}
figure.keep{border-color:#2a8a2a;background:#f2fbf2}
figure img{display:block;max-width:216px;max-height:216px;margin:0 auto 4px}
.noimg{height:120px;display:flex;align-items:center;justify-content:center;color:#999;background:#eee}
.badge{display:inline-block;font-weight:bold;font-size:.8em;padding:1px 6px;border-radius:3px;color:#fff}
.badge.keep{background:#2a8a2a}.badge.act{background:#b33}
.path{word-break:break-all;font-family:monospace;font-size:.85em}
.why{font-size:.85em;color:#444}.meta{font-size:.8em;color:#666}
.verdict{font-weight:bold}
#commands{width:100%;height:6em;font-family:monospace}
table.errors{border-collapse:collapse}table.errors td{border-top:1px solid #ddd;padding:2px 8px}
"""

_SCRIPT = """
(function () {
  function quote(s) { return "'" + s.replace(/'/g, "'\\\\''") + "'"; }
  var box = document.getElementById("commands");
  var db = document.body.getAttribute("data-db");
  var scope = document.body.getAttribute("data-scope");
  function update() {
    var lines = [];
    document.querySelectorAll("input.notdup:checked").forEach(function (c) {
      lines.push("lookalike review --db " + quote(db) + " mark --scope " + quote(scope) + " " +
                 quote(c.getAttribute("data-a")) + " " + quote(c.getAttribute("data-b")) + " not_duplicate");
    });
    box.value = lines.join("\\n");
    document.getElementById("marked").textContent = String(lines.length);
  }
  document.querySelectorAll("input.notdup").forEach(function (c) { c.addEventListener("change", update); });
  update();
})();
"""


def thumbnail_uri(path: str, side: int = 200, limits: DecodeLimits | None = None) -> str | None:
    """A ``data:image/jpeg`` URI of the picture at ``path``, or None when it cannot be read."""
    try:
        data = read_source(path, max_bytes=(limits or DecodeLimits()).max_bytes).data
        jpeg = preview_jpeg(data, max_side=side, quality=78, limits=limits)
    except InputError:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def _thumb(args: tuple[str, int]) -> str | None:
    return thumbnail_uri(*args)


def write_html(
    result: FindResult,
    path: str | os.PathLike[str],
    *,
    db: str = "",
    scope: str = "find",
    jobs: int = 0,
    thumb_side: int = 200,
    title: str = "lookalike: duplicate groups",
) -> None:
    """Write the report of ``result`` to ``path`` (thumbnails made in ``jobs`` processes; 0 = all cores).

    Raises ``FetchError`` when the file cannot be written."""
    paths = [m.path for g in result.groups for m in g.members]
    workers = jobs or default_jobs()
    if workers > 1 and len(paths) > 8:
        with worker_pool(workers) as pool:
            thumbs = dict(zip(paths, pool.map(_thumb, [(p, thumb_side) for p in paths], chunksize=16)))
    else:
        thumbs = {p: thumbnail_uri(p, thumb_side) for p in paths}
    parts = [
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'><link rel='icon' href='data:,'>",
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>",
        f"<body data-db='{_e(db)}' data-scope='{_e(scope)}'>",
        f"<h1>{_e(title)}</h1>",
        _stats(result),
        "<p>Tick <em>not a duplicate</em> on a card, then run the commands below: later runs keep those pairs apart"
        " (<span id='marked'>0</span> marked).</p>",
        "<textarea id='commands' readonly aria-label='commands to record decisions'></textarea>",
    ]
    for i, g in enumerate(result.groups, 1):
        parts.append(_group(i, g, thumbs))
    if result.errors:
        parts.append(f"<h2 id='errors'>Files that could not be read ({len(result.errors)})</h2>")
        parts.append("<table class='errors'><tr><th>file</th><th>code</th><th>error</th></tr>")
        for e in result.errors:
            cells = f"<td class='path'>{_e(e.path)}</td><td>{_e(e.code)}</td><td>{_e(e.message)}</td>"
            parts.append(f"<tr class='error'>{cells}</tr>")
        parts.append("</table>")
    parts.append(f"<script>{_SCRIPT}</script></body></html>\n")
    try:
        # a file name that is not UTF-8 cannot be in a UTF-8 page: its odd bytes show as \udcNN escapes
        with open(path, "w", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write("\n".join(parts))
    except OSError as exc:
        raise FetchError(f"{path}: cannot write the HTML report ({exc.strerror or exc})") from exc


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _stats(result: FindResult) -> str:
    s = result.stats
    rows = [
        ("folders", ", ".join(result.roots)),
        ("files", f"{s.files:,} ({s.read:,} read now, {s.cached:,} from the cache)"),
        ("groups", f"{s.groups:,}"),
        ("copies not kept", f"{s.duplicates:,} ({s.reclaimable_bytes / 1e6:,.1f} MB)"),
        ("linked pairs", f"{s.pairs:,}"),
        ("unreadable files", f"{s.errors:,}"),
        ("time", f"{s.seconds:,.1f} s"),
    ]
    cells = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table class='stats'>{cells}</table>"


def _group(i: int, g: Group, thumbs: dict[str, str | None]) -> str:
    cards = "".join(_card(m, g, thumbs.get(m.path)) for m in g.members)
    return (
        f"<section class='group' id='group-{i}' data-members='{len(g.members)}'>"
        f"<h2>Group {i}: {len(g.members)} files — keep <span class='path'>{_e(g.keep)}</span></h2>"
        f"<div class='members'>{cards}</div></section>"
    )


def _card(m: Member, g: Group, thumb: str | None) -> str:
    img = (
        f"<img src='{thumb}' alt='{_e(os.path.basename(m.path))}'>" if thumb else "<div class='noimg'>no preview</div>"
    )
    if m.path == g.keep:
        badge = "<span class='badge keep'>KEEP</span>"
    elif m.keep:
        badge = "<span class='badge keep'>KEEP (keep-in folder)</span>"
    else:
        badge = "<span class='badge act'>copy</span>"
    date = f", taken {_e(m.taken_at)}" if m.taken_at else ""
    fmt = m.mime.split("/")[-1].upper()
    why = (
        f"<div class='why'><span class='score'>{m.score:.3f}</span> <span class='verdict'>{_e(m.verdict)}</span>"
        f" with <span class='path'>{_e(os.path.basename(m.match))}</span>: {_e(m.evidence)}</div>"
    )
    mark = ""
    if m.path != g.keep:
        mark = (
            f"<label class='meta'><input type='checkbox' class='notdup' data-a='{_e(g.keep)}' data-b='{_e(m.path)}'>"
            " not a duplicate</label>"
        )
    cls = "member keep" if m.keep else "member"
    return (
        f"<figure class='{cls}' data-path='{_e(m.path)}'>{img}<figcaption>{badge}"
        f"<div class='path'>{_e(m.path)}</div>"
        f"<div class='meta'>{m.width}×{m.height}, {m.byte_size:,} bytes, {_e(fmt)}{date}</div>"
        f"{why}{mark}</figcaption></figure>"
    )
