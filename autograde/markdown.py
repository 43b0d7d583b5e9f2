"""MyST, as the book is written, turned into plain Markdown for JupyterLab, Colab and feedback pages.

The chapters are written once, in MyST, for the book. The student edition and the
feedback pages are read where MyST is not rendered (JupyterLab without an
extension, Colab, a browser opening a feedback file), so their Markdown cells are
converted: ``{term}`word``` becomes *word*, ``{cite}`key``` becomes (Author, year)
from ``book/references.bib``, ``:::{margin} Title`` becomes a quoted block, and so
on. Dollar maths stays as it is: JupyterLab renders it. A role or directive this
module does not know is left as it is, and a test fails on it.
"""

import codecs
import functools
import re

import latexcodec  # noqa: F401  (registers the "ulatex" codec)

from . import course

BIBLIOGRAPHY = course.REPO / "book" / "references.bib"
ADMONITIONS = {"margin": "", "note": "Note", "warning": "Warning", "tip": "Tip", "important": "Important",
               "admonition": ""}
_ROLE = re.compile(r"\{(?P<role>[a-z]+(?::[a-z]+)?)\}`(?P<body>[^`]*)`")
_TITLED = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>:{3,}|`{3,})\{(?P<name>[a-z-]+)\}\s*(?P<title>.*)$")
_LABEL = re.compile(r"^\((?P<label>[\w:-]+)\)=\s*$")


@functools.lru_cache(maxsize=1)
def citations():
    """Bibliography key -> "Author and Author, year" (or "Author et al., year")."""
    from pybtex.database import parse_file

    entries = {}
    for key, entry in parse_file(str(BIBLIOGRAPHY)).entries.items():
        people = entry.persons.get("author", [])
        names = [_plain(" ".join(person.last_names) or str(person)) for person in people]
        if len(names) > 2 or any(name == "others" for name in names):
            who = f"{names[0]} et al."
        else:
            who = " and ".join(names)
        entries[key] = f"{who}, {entry.fields.get('year', 'n.d.')}"
    return entries


def _plain(latex):
    return codecs.decode(latex, "ulatex").replace("{", "").replace("}", "")


def _titled(body):
    """``text <target>`` -> (text, target); ``target`` -> (None, target)."""
    match = _TITLED.match(body.strip())
    return (match["text"], match["target"]) if match else (None, body.strip())


def _role(match):
    role, body = match["role"], match["body"]
    text, target = _titled(body)
    if role == "term":
        return f"*{text or target}*"
    if role in ("doc", "ref", "numref"):
        return text or target.rsplit("/", 1)[-1].replace("_", " ")
    if role in ("cite", "cite:p", "cite:t"):
        known = citations()
        found = [known.get(key.strip(), key.strip()) for key in body.split(",")]
        if role == "cite:t":
            return "; ".join(f"{who} ({year})" for who, _, year in (item.rpartition(", ") for item in found))
        return f"({'; '.join(found)})"
    if role == "math":
        return f"${body}$"
    if role == "eq":
        return f"({target})"
    return match.group(0)


def plain_markdown(text):
    """Markdown ``text`` with MyST's roles and directives written as plain Markdown."""
    lines, out, index = text.splitlines(), [], 0
    while index < len(lines):
        line = lines[index]
        fence = _FENCE.match(line)
        if _LABEL.match(line):
            index += 1
            continue
        if fence and fence["name"] in ADMONITIONS:
            closing = re.compile(rf"^ {{0,3}}{re.escape(fence['fence'][0])}{{{len(fence['fence'])},}}\s*$")
            body, index = [], index + 1
            while index < len(lines) and not closing.match(lines[index]):
                if not re.match(r"^:[a-z-]+:", lines[index]):  # directive options (:class: ...)
                    body.append(lines[index])
                index += 1
            title = fence["title"].strip() or ADMONITIONS[fence["name"]]
            quoted = ([f"> **{plain_markdown(title)}**", ">"] if title else []) + [
                f"> {row}".rstrip() for row in plain_markdown("\n".join(body)).splitlines()
            ]
            out.extend(quoted)
            index += 1
            continue
        out.append(_ROLE.sub(_role, line))
        index += 1
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def plain_notebook(notebook):
    """Convert every Markdown cell of ``notebook`` (a dict, changed in place); return it."""
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "markdown":
            cell["source"] = plain_markdown(course.text(cell))
    return notebook


LEFTOVER = re.compile(r"\{[a-z]+(?::[a-z]+)?\}`|^ {0,3}(?::{3,}|`{3,})\{", re.M)


def leftovers(notebook):
    """MyST syntax that :func:`plain_markdown` did not convert (each as a short excerpt)."""
    found = []
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "markdown":
            text = course.text(cell)
            found += [text[max(0, m.start() - 20) : m.end() + 30] for m in LEFTOVER.finditer(text)]
    return found
