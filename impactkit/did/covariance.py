"""Cluster-robust covariance for DiD: moved to :mod:`impactkit.numerics.covariance` (re-exported)."""

from impactkit.numerics.covariance import (
    ClusterInfo,
    bread,
    cluster_meat,
    fixest_df_k,
    intersect_codes,
    is_nested,
    make_psd_check,
    vcov_crv1,
    vcov_crv3,
    vcov_hc1,
)

__all__ = ["ClusterInfo", "bread", "cluster_meat", "fixest_df_k", "intersect_codes", "is_nested",
           "make_psd_check", "vcov_crv1", "vcov_crv3", "vcov_hc1"]
