"""Helpers shared by several test modules: a tiny digits model and where the real MNIST files are."""
