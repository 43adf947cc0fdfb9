"""MedSight: unsupervised chest X-ray anomaly detection, explanation, clinical notes and grounded chat.

The library knows nothing about Streamlit; the app (`app.py`, `pages/`) and the CLI (`medsight.cli`) are thin
shells over the functions exported by the subpackages.
"""

__version__ = "0.1.0"
