"""Numeric kernels that models and transforms share: the ordered thread map, top-k per row,
dense id codes. A leaf: it imports no other package of the project."""
