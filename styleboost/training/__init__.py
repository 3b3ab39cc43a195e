"""Training a style into a model: config, loop, step maths, methods, data, checkpoints, exports."""
