"""Public op functions, one module per family; each module declares its primitives."""
