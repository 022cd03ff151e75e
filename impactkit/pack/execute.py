"""A minimal executor for ``{python}`` cells of a ``.qmd``, for when Quarto is absent.

Report authors can write their own ``.qmd`` with executable cells that call impactkit::

    ```{python}
    #| echo: false
    from impactkit.analysis import run_analysis
    results = run_analysis("analyses/<name>")
    ```

With Quarto on ``PATH`` (and a Jupyter kernel), ``quarto render`` executes them. Without
it, ``python -m impactkit.pack.execute report.qmd --to html,pdf`` does what this module
documents, then renders with the pandoc + typst fallback:

* cells run **in order, in one namespace**, with the ``.qmd``'s folder as working folder;
* a cell's code is shown as a plain ``python`` code block unless ``#| echo: false``;
* its output replaces it: printed text (a code block), then the value of the last
  expression: ``_repr_markdown_()`` if the object has it (impactkit results, pandas frames
  via ``to_markdown``), else its ``repr`` in a code block; ``#| output: false`` hides it;
* matplotlib figures (a returned ``Figure``/``Axes`` and any figure left open with pyplot)
  are saved as PNG under ``<stem>_files/execute/`` and inserted with their ``#| fig-cap``
  and ``#| fig-alt`` (default alt: "Figure from cell N");
* an exception stops execution with :class:`~impactkit.errors.InputError` naming the cell.

Not supported: inline expressions, other languages, cell caching, widgets, ``#| eval``
other than ``true``/``false`` (``false`` skips the cell).
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from impactkit.errors import InputError

CELL = re.compile(r"^```+\s*\{python[^}]*\}[ \t]*\n(.*?)^```+[ \t]*$", re.MULTILINE | re.DOTALL)
OPTION = re.compile(r"^#\|\s*([\w-]+)\s*:\s*(.*)$")


def cell_options(code: str) -> tuple[dict[str, Any], str]:
    """Split the ``#| key: value`` lines at the top of a cell from its code."""
    options: dict[str, Any] = {}
    lines = code.splitlines()
    body_start = 0
    for i, line in enumerate(lines):
        match = OPTION.match(line.strip())
        if not match:
            break
        try:
            options[match.group(1)] = yaml.safe_load(match.group(2))
        except yaml.YAMLError:
            options[match.group(1)] = match.group(2)
        body_start = i + 1
    return options, "\n".join(lines[body_start:])


def _run_cell(code: str, namespace: dict[str, Any], label: str) -> tuple[Any, str]:
    """Execute ``code``; return (value of a final expression or None, captured stdout)."""
    try:
        tree = ast.parse(code, filename=label)
    except SyntaxError as exc:
        raise InputError(f"{label}: syntax error on line {exc.lineno}: {exc.msg}") from None
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(tree, label, "exec"), namespace)  # noqa: S102 - the author's own report code
            value = eval(compile(ast.Expression(last.value), label, "eval"), namespace) if last else None
    except Exception as exc:  # report the author's error as one line naming the cell
        raise InputError(f"{label}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    return value, out.getvalue()


def _markdown_of(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "_repr_markdown_"):
        text = value._repr_markdown_()
        if text:
            return str(text)
    if hasattr(value, "to_markdown"):
        try:
            return str(value.to_markdown())
        except ImportError:
            pass
    return "```\n" + repr(value) + "\n```"


def _figures_of(value: Any) -> list[Any]:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    found = []
    if isinstance(value, Figure):
        found.append(value)
    elif isinstance(value, Axes):
        found.append(value.figure)
    import matplotlib.pyplot as plt

    for num in plt.get_fignums():
        fig = plt.figure(num)
        if fig not in found:
            found.append(fig)
    return found


def execute_text(text: str, folder: Path, stem: str = "report") -> str:
    """Run the ``{python}`` cells of ``text`` (a ``.qmd``) and return Markdown with outputs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    namespace: dict[str, Any] = {"__name__": "__main__"}
    figure_dir = Path(folder) / f"{stem}_files" / "execute"
    pieces: list[str] = []
    position = 0
    previous_cwd = Path.cwd()
    os.chdir(folder)
    sys.path.insert(0, str(folder))
    try:
        for number, match in enumerate(CELL.finditer(text), start=1):
            pieces.append(text[position:match.start()])
            position = match.end()
            options, code = cell_options(match.group(1))
            label = f"cell {number}" + (f" ({options['label']})" if options.get("label") else "")
            if options.get("eval") is False:
                if options.get("echo", True) is not False:
                    pieces.append(f"```python\n{code}\n```\n")
                continue
            value, printed = _run_cell(code, namespace, label)
            block: list[str] = []
            if options.get("echo", True) is not False:
                block.append(f"```python\n{code}\n```")
            if options.get("output", True) is not False:
                if printed.strip():
                    block.append("```\n" + printed.rstrip("\n") + "\n```")
                figures = _figures_of(value)
                shown = _markdown_of(value) if not figures else None
                if shown:
                    block.append(shown)
                for k, fig in enumerate(figures, start=1):
                    figure_dir.mkdir(parents=True, exist_ok=True)
                    path = figure_dir / f"cell-{number}-{k}.png"
                    fig.savefig(path, dpi=150, metadata={"Software": None})
                    cap = str(options.get("fig-cap") or "")
                    alt = str(options.get("fig-alt") or cap or f"Figure from cell {number}").replace('"', "'")
                    block.append(f'![{cap}]({path.relative_to(folder).as_posix()}){{fig-alt="{alt}"}}')
            plt.close("all")
            pieces.append("\n\n".join(block) + "\n" if block else "")
        pieces.append(text[position:])
    finally:
        os.chdir(previous_cwd)
        if sys.path and sys.path[0] == str(folder):
            sys.path.pop(0)
    return "".join(pieces)


def execute_and_render(qmd: Path, to: str = "html,pdf") -> dict[str, Path]:
    """Run the cells of ``qmd`` (fallback executor) and render ``<stem>.html`` / ``.pdf``.

    With Quarto on ``PATH`` this is ``quarto render`` (Quarto executes the cells itself).
    """
    from impactkit.pack.render import quarto_path, render

    qmd = Path(qmd).resolve()
    if not qmd.is_file():
        raise InputError(f"{qmd}: no such .qmd file")
    if quarto_path():
        return render(qmd, to, engine="quarto")
    executed = qmd.with_name(f".{qmd.stem}.executed.qmd")
    executed.write_text(execute_text(qmd.read_text(encoding="utf-8"), qmd.parent, qmd.stem), encoding="utf-8")
    try:
        produced = render(executed, to, engine="pandoc")
        final: dict[str, Path] = {}
        for kind, path in produced.items():
            target = qmd.with_suffix(path.suffix)
            os.replace(path, target)
            final[kind] = target
        return final
    finally:
        executed.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m impactkit.pack.execute",
                                     description="Run the {python} cells of a .qmd and render it without Quarto.")
    parser.add_argument("qmd", type=Path)
    parser.add_argument("--to", default="html,pdf")
    args = parser.parse_args(argv)
    try:
        outputs = execute_and_render(args.qmd, args.to)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    for kind in ("html", "pdf"):
        if kind in outputs:
            print(outputs[kind])
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
