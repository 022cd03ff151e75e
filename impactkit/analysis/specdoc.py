"""The reference page of ``analysis.toml``, generated from the pydantic model.

``python -m impactkit.analysis.specdoc > docs/analysis-spec.md`` rewrites the page; a test
checks that the committed page equals :func:`render_reference` (every key, its type, its
default and its meaning, taken from the model itself, so the page cannot drift).
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from impactkit.analysis.spec import AnalysisSpec

INTRO = """\
# `analysis.toml` reference

An analysis folder holds `analysis.toml`: the data, its contract, the design, the outcome,
the estimators, the design checks, the scale-readiness inputs, the pack options and the seed.
Paths are relative to the folder. Unknown keys are errors (exit 2, naming the file and the key),
so a typo never passes silently; every key below is used by `impactkit estimate` / `pack`.

*This page is generated from `impactkit.analysis.spec.AnalysisSpec`:*
`python -m impactkit.analysis.specdoc > docs/analysis-spec.md` (a test keeps it current).

## What the outcome is

`[outcomes] kind` says what the primary outcome is and fixes how every effect is stated:

| kind | the outcome | effects are stated as |
|---|---|---|
| `level` | a quantity in `units` | the estimate in `units` |
| `log` | already a logarithm (do not set `transform`) | percent change, `exp(b) - 1`, interval transformed |
| `share` | a 0-1 share or a binary outcome | percentage points, `100 b` |
| `money` | an amount in `currency` at `currency_year` prices | the currency; with `transform = "log"`, percent and the baseline mean times `exp(b) - 1` |

`transform = "log"` analyses `log(primary)` (only when asked; the default `"none"` never logs).
A money figure appears only for `kind = "money"`.

## Sections left out

A section that does not apply (no attrition -> no Lee bounds; one adoption period -> no
Goodman-Bacon decomposition; no `take_up` -> no instrumental variables...) is left out of the
results with a one-line reason under `omitted`, which the pack prints.

## Weights

`[design] weights` reaches Callaway-Sant'Anna, TWFE, Sun-Abraham, 2x2, ANCOVA, the wild
bootstrap, randomization inference, instrumental variables, balance and Lee bounds. The steps
that take no weights (Goodman-Bacon, attrition rates, subgroup effects, multiple-outcome
corrections, power) run unweighted; the results list them under `data.weights.not_used_by`
and a one-line warning says so.
"""

EXAMPLE = """\
## Worked example

A county panel whose outcome is already a log (the `mpdta` data of Callaway and Sant'Anna 2021,
shipped by `moderndid`), clustered by county:

```toml
[analysis]
name = "mpdta"
title = "Minimum wage increases and county teen employment, 2003-2007"
question = "Did raising the state minimum wage change teen employment in the counties affected?"
unit_label = "county"
unit_plural = "counties"
treated_label = "affected"
control_label = "unaffected"

[data]
file = "mpdta.parquet"
contract = "contract.yaml"

[design]
unit = "countyreal"
time = "year"
cohort = "first_treat"     # 0 = never treated (the contract's never_treated_cohort)
treated = "treated"
cluster = "countyreal"
period_label = "year"

[outcomes]
primary = "lemp"
kind = "log"               # already a log: effects read as percent changes
label = "log teen employment"

[estimators]
headline = "cs"
compare = ["twfe", "cs", "sa"]

[seeds]
entropy = 20210101
```

`impactkit pack mpdta` then opens with "The programme lowered log teen employment by an
estimated -3.9% (95% confidence interval -6.2% to -1.6%) ...": the Callaway-Sant'Anna simple ATT
of -0.040 log points as `exp(b) - 1`. More examples: `analyses/*/analysis.toml`.
"""


def type_name(annotation: Any) -> str:
    """A readable type: ``list[str]``, ``int | None``, ``'log' | 'none'``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a!r}`".replace("'", '"') for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(type_name(a) for a in args)
    if origin is list:
        return f"list[{type_name(args[0])}]" if args else "list"
    if annotation is type(None):
        return "none"
    return getattr(annotation, "__name__", str(annotation))


def default_text(field: Any) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        value = field.default_factory()
    else:
        value = field.default
    if value is PydanticUndefined:
        return "**required**"
    if isinstance(value, BaseModel):
        return "(section defaults)"
    if value is None:
        return "none"
    return f"`{value!r}`".replace("'", '"').replace("True", "true").replace("False", "false")


def section_table(name: str, model: type[BaseModel]) -> str:
    lines = [f"## `[{name}]`", "", (model.__doc__ or "").strip().split("\n")[0].replace("``", "`"), "",
             "| key | type | default | meaning |", "|---|---|---|---|"]
    for key, field in model.model_fields.items():
        meaning = (field.description or "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{key}` | {type_name(field.annotation)} | {default_text(field)} | {meaning} |")
    return "\n".join(lines)


def render_reference() -> str:
    """The whole page (Markdown)."""
    parts = [INTRO]
    for name, field in AnalysisSpec.model_fields.items():
        if name == "folder":
            continue
        model = field.annotation
        required = "required section" if field.is_required() else "optional section"
        parts.append(section_table(name, model) + f"\n\n*{required}.*")
    parts.append(EXAMPLE)
    return "\n\n".join(p.rstrip() for p in parts) + "\n"


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.stdout.write(render_reference())
