"""Shipped ONNX assignment models, their configs and model cards (package data).

Load files with ``importlib.resources.files("pairhunt.models")``.
"""
