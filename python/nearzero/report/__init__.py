"""Explaining near-zero gradients of PyTorch layers (SPEC §8): record a training run with
`GradientRecorder`, then `explain_near_zero_gradients` for one layer or `explain_model` for all.
Needs torch; matplotlib for the plots.
"""

from .explain import explain_model, explain_near_zero_gradients
from .overview import ModelOverview
from .recorder import GradientRecorder
from .report import Report

__all__ = [
    "GradientRecorder",
    "ModelOverview",
    "Report",
    "explain_model",
    "explain_near_zero_gradients",
]
