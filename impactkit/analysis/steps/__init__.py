"""The steps of every analysis, registered in this order (:data:`impactkit.analysis.context.STEPS`):
estimation (analysis, data, validation, estimators, event study, inference, Goodman-Bacon, IV,
headline), then design checks (balance, attrition, heterogeneity, multiple outcomes, power), then
scale readiness. Importing any step module imports this package first, so the order holds."""

from impactkit.analysis.steps import estimation  # noqa: F401
from impactkit.analysis.steps import checks  # noqa: F401
from impactkit.analysis.steps import scale  # noqa: F401
