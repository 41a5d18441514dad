"""track_backends: interchangeable document stores for experiment tracking."""
