"""The words an analysis is written in: unit nouns, outcome, subgroup, clusters, take-up.

Every label comes from ``analysis.toml`` or, when the spec leaves it out, from the data
contract's description of the column (``schema[].properties[].description``), and last
from the column name itself. impactkit itself holds no study's words.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Labels:
    unit: str
    units: str
    outcome: str
    clusters: str
    treated: str
    control: str
    take_up: str
    period: str
    subgroup: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def column_description(contract: Any, column: str | None) -> str | None:
    """The contract's ``description`` (else ``businessName``) of ``column``, if any."""
    if contract is None or not column:
        return None
    try:
        prop = contract.properties.get(column)
    except AttributeError:
        return None
    if prop is None:
        return None
    text = (prop.description or prop.businessName or "").strip()
    return text.rstrip(".") or None


def resolve_labels(spec: Any, contract: Any = None) -> Labels:
    """Labels of ``spec`` with the contract's column descriptions as fall-backs."""
    a, d, o = spec.analysis, spec.design, spec.outcomes
    subgroup = None
    if d.subgroup:
        subgroup = d.subgroup_label or column_description(contract, d.subgroup) or d.subgroup
    return Labels(
        unit=a.unit_label,
        units=a.plural(),
        outcome=o.label or column_description(contract, o.primary) or o.primary,
        clusters=a.cluster_label or "clusters",
        treated=a.treated_label,
        control=a.control_label,
        take_up=d.take_up_label,
        period=d.period_label,
        subgroup=subgroup,
    )


def periods_phrase(n: int, period: str) -> str:
    """``(2, 'year') -> '2 years'``; ``(1, 'wave') -> '1 wave'``."""
    return f"{n} {period}" + ("" if n == 1 else "s")
