"""Scaling readiness of an intervention package (Sartas et al. 2020, CGIAR).

Sartas, M., Schut, M., Proietti, C., Thiele, G. & Leeuwis, C. (2020). "Scaling Readiness:
Science and practice of an approach to enhance impact of research for development."
*Agricultural Systems* 183, 102874 (five authors).

The practical guide of the same year has seven authors: Sartas, M., Schut, M., van Schagen,
B., Velasco, C., Thiele, G., Proietti, C. & Leeuwis, C. (2020). *Scaling Readiness: Concepts,
Practices, and Implementation*. CGIAR Research Program on Roots, Tubers and Bananas (RTB).
The strategic options for a bottleneck (improve, outsource, substitute, relocate, reorient,
postpone, stop) are those of the approach.

Each component of an innovation package gets an *innovation readiness* level (1 idea ... 9
proven in the intended setting at scale) and an *innovation use* level (1 used only by the
project team ... 9 in common use by unconnected users). Its *scaling readiness* is
readiness x use (1-81). The package is only as ready as its weakest component (the
"limiting factor" of the paper): package readiness = min over components, and that component
is the **bottleneck** a scaling strategy should work on first. The level labels below are
paraphrased short forms of the paper's definitions.
"""

from __future__ import annotations

import numpy as np

MAX_SCALING_READINESS = 81.0

READINESS_LEVELS = {
    1: "idea", 2: "basic model being tested", 3: "basic model proven", 4: "application model being tested",
    5: "application model proven", 6: "application being tested in the intended setting",
    7: "application proven in the intended setting", 8: "incubation: being used beyond the pilot",
    9: "proven at scale",
}
USE_LEVELS = {
    1: "project team only", 2: "project team and first partners", 3: "effective partners",
    4: "partners beyond the project", 5: "innovation network", 6: "innovation network beyond the region",
    7: "innovation system", 8: "innovation system beyond the region", 9: "common use by unconnected users",
}


def component_scaling_readiness(readiness: np.ndarray, use: np.ndarray) -> np.ndarray:
    """Scaling readiness = readiness level x use level (Sartas et al. 2020, sec. 2), on 1-81."""
    return np.asarray(readiness, dtype=float) * np.asarray(use, dtype=float)


def package_readiness(readiness: np.ndarray, use: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weakest-component rule: ``(min scaling readiness, index of the bottleneck component)``.

    Arrays are ``(..., components)``; ``present`` masks padding (packages of different sizes).
    Ties go to the first component listed, so the bottleneck is deterministic.
    """
    scores = np.where(present, component_scaling_readiness(readiness, use), np.inf)
    index = np.argmin(scores, axis=-1)
    return np.take_along_axis(scores, index[..., None], axis=-1)[..., 0], index


def location_readiness(components: list[tuple[str, tuple[float, float], tuple[float, float], bool]],
                       floor: float) -> dict:
    """Package readiness at one location: ``components`` = (name, readiness (low, high), use (low, high),
    level unknown?). Returns the interval of the weakest-component product, the bottleneck (at the
    centres), whether it is a data gap, and the readiness gate status at the floor."""
    low = min(r[0] * u[0] for _, r, u, _ in components)
    high = min(r[1] * u[1] for _, r, u, _ in components)
    centre = [0.25 * (r[0] + r[1]) * (u[0] + u[1]) for _, r, u, _ in components]
    k = int(np.argmin(centre))
    status = "passed" if low >= floor else ("failed" if high < floor else "uncertain")
    return {"scaling_readiness_low": float(low), "scaling_readiness_high": float(high),
            "scaling_readiness": float(centre[k]), "bottleneck": components[k][0],
            "data_gap": bool(components[k][3]), "readiness_gate": status}
