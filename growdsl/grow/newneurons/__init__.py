"""New neurons computed in closed form from gradient statistics, the machinery GradMax and TINY
share (docs/methods/gradmax.md, docs/methods/tiny.md): where such neurons can go (`sites`), the
statistics of one forward and backward pass (`collect`), writing them into the widened net
(`place`), and the transform both methods are (`transform`)."""
