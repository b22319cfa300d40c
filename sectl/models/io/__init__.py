"""Models on disk: checkpoints, names and run folders (loading), the published models' conversion
(pretrained), and packaging a run for inference (export). Above the model families: they import
models, never the reverse."""
