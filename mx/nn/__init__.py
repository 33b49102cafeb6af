"""mx.nn (being written)"""
