"""Training loops: each module exposes `train(config, *, workdir, resume=False)`."""
