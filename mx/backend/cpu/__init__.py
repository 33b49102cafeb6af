"""CPU kernels that NumPy does not provide."""
