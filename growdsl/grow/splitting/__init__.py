"""The math of splitting steepest descent (METHODS.md sections 1-3), free of any growth policy:
where a split applies (`sites`), σ'' (`curvature`), the factors of the splitting matrices
(`factors`), the matrices and their products (`matrices`), their extreme eigenpairs (`eigen`) and
the split schemes with their predicted loss changes (`schemes`)."""
