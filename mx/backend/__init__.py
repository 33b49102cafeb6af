"""Backends: the CPU (NumPy kernels plus compiled special functions) and the GPU shims."""
