"""Storage: content-addressed objects and the metadata store. Knows nothing of machine learning."""
