"""Shared numerical core: fixed-effect demeaning, least squares and sandwich covariances.

- :mod:`impactkit.numerics.within`: partial one or more (weighted) fixed effects out of
  the columns of a matrix (the within transformation);
- :mod:`impactkit.numerics.ols`: weighted least squares returning coefficients,
  residuals and the bread ``(X'WX)^-1``;
- :mod:`impactkit.numerics.covariance`: HC1, CRV1 (one- and two-way) and CRV3 sandwich
  covariances with their documented small-sample factors.

Every function is pure and works on numpy arrays, so that it can run per partition;
``did``, ``iv`` and ``checks`` all use these one implementations.
"""
