"""The private engine beneath the estimators: validation, torch capture, extraction, training, caching."""
