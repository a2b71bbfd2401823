"""Gauss-Newton backends (full GN, GN-prox-linear, layerwise GN) and their pieces: the curvature products
through automatic differentiation, the logit-space terms, the inner solver and the line search."""
