"""The math of splitting steepest descent (docs/methods/splitting.md), free of any growth policy:
where a split applies (`sites`), σ'' (`curvature`), the factors of the splitting matrices
(`factors`), the matrices and their products (`matrices`), their extreme eigenpairs (`eigen`) and
the split schemes with their predicted loss changes (`schemes`)."""
