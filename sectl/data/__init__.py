"""Training and validation data: paired folders, on-the-fly mixing, augmentation."""
