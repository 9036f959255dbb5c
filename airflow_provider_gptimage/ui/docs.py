"""The documentation of the installed version, served by the plugin at ``/gptimage/docs/`` (the package's
Documentation URL, which the Providers page of the Airflow UI links to).

The wheel ships the Markdown sources of ``docs/`` (and the README, changelog and benchmarks) inside the
package. They are rendered here with ``markdown-it-py`` (an Airflow dependency), the few MyST directives the
pages use made plain: ``literalinclude`` (code from the shipped example DAGs), ``include``, ``toctree`` and
the autodoc blocks of the API reference (which ``make docs`` renders in full). Raw HTML in a page is escaped,
and only ``.md`` files inside the documentation folder are ever read.
"""

from __future__ import annotations

import html
import re
import textwrap
from pathlib import Path

from airflow_provider_gptimage.examples import examples_folder

_PAGE = re.compile(r"(?:[a-z0-9_-]+/)*[A-Za-z0-9_-]+\.md")
_DIRECTIVE = re.compile(r"```\{(\w[\w-]*)\}[ \t]*([^\n]*)\n(.*?)```", re.DOTALL)
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5;"
    "color:#222}pre{background:#f4f4f4;padding:.8rem;overflow:auto}code{font-size:.9em}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .5rem;vertical-align:top}"
    "nav{margin-bottom:1.5rem;font-size:.9rem}"
)


def docs_folder() -> Path:
    """The shipped documentation: inside the installed package, else the source checkout's ``docs/``."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "docs", package.parent / "docs"):
        if (candidate / "index.md").is_file():
            return candidate
    raise FileNotFoundError("the documentation is not installed with this package (a wheel ships it)")


def page_file(page: str) -> Path | None:
    """The file of a page name such as ``howto/batch.md`` (``docs/`` in front is ignored), or ``None``."""
    page = page.removeprefix("docs/") or "index.md"
    if not _PAGE.fullmatch(page):
        return None
    root = docs_folder()
    path = (root / page).resolve()
    return path if path.is_file() and root.resolve() in path.parents else None


def _sibling(base: Path, target: str) -> Path | None:
    """A file an ``include`` names: inside the docs folder, or its copy there (README, changelog...)."""
    root = docs_folder().resolve()
    for path in ((base.parent / target).resolve(), root / Path(target).name):
        if path.is_file() and (root in path.parents or path.parent == root.parent):
            return path
    return None


def _options(body: str) -> tuple[dict[str, str], str]:
    options: dict[str, str] = {}
    rest: list[str] = []
    for line in body.splitlines():
        match = re.fullmatch(r":([\w-]+):\s*(.*)", line.strip())
        if match and not rest:
            options[match.group(1)] = match.group(2).strip().strip('"')
        else:
            rest.append(line)
    return options, "\n".join(rest)


def _literalinclude(argument: str, body: str) -> str:
    options, _ = _options(body)
    path = examples_folder() / Path(argument).name
    if not path.is_file() or "example_dags" not in argument:
        return "*(example not shipped)*\n"
    text = path.read_text()
    if "start-after" in options:
        text = text.split(options["start-after"], 1)[-1].split("\n", 1)[-1]
    if "end-before" in options:
        text = text.split(options["end-before"], 1)[0].rsplit("\n", 1)[0]
    text = textwrap.dedent(text) if "dedent" in options else text
    return f"```{options.get('language', 'python')}\n{text.rstrip()}\n```\n"


def _toctree(body: str) -> str:
    _, entries = _options(body)
    links = []
    for entry in (e.strip() for e in entries.splitlines() if e.strip()):
        path = page_file(f"{entry}.md")
        title = _title(path.read_text()) if path else entry
        links.append(f"- [{title}]({entry}.md)")
    return "\n".join(links) + "\n"


def _title(text: str) -> str:
    match = re.search(r"(?m)^# (.+)$", text)
    return match.group(1).strip() if match else "Documentation"


def expand(text: str, base: Path) -> str:
    """The page's Markdown with its MyST directives made plain (see the module docstring)."""

    def one(match: re.Match[str]) -> str:
        name, argument, body = match.group(1), match.group(2).strip(), match.group(3)
        if name == "literalinclude":
            return _literalinclude(argument, body)
        if name == "include":
            found = _sibling(base, argument)
            return found.read_text() if found else ""
        if name == "toctree":
            return _toctree(body)
        modules = re.findall(r"automodule:: ([\w.]+)", body)
        if modules:
            return "".join(f"- `{module}`\n" for module in modules) + "\n*(members: build the docs with `make docs`)*\n"
        return f"```\n{body}```\n"

    return _DIRECTIVE.sub(one, text)


def render(page: str) -> str | None:
    """The HTML of a page, or ``None`` when there is no such page."""
    from markdown_it import MarkdownIt

    path = page_file(page)
    if path is None:
        return None
    text = expand(path.read_text(), path)
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(text)
    depth = page.removeprefix("docs/").count("/")
    home = "../" * depth + "index.md"
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(_title(text))}</title>'
        f'<style>{_STYLE}</style></head><body><nav><a href="{home}">airflow-provider-gptimage documentation</a>'
        f"</nav>{body}</body></html>\n"
    )
