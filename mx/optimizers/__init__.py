"""mx.optimizers (being written)"""
