"""Core of Live Training Lab: data, models, training, the job runner and the model store (no UI)."""

import os

# TensorFlow prints pages of start-up notices to stderr; keep warnings and errors only.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
