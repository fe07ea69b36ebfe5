"""``csm-diag``, the diagnostics runner on top of the ``csm_diag_*`` APIs."""
