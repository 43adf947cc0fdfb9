"""Feature caches, synthetic anomalies from normals, training phases and evaluation."""
