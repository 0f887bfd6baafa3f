"""Encoders, pooling, heads, losses and the criteria classifier (registries for extension)."""

from workflow_lib.learning.models.encoders import EncoderLoadError, load_encoder
from workflow_lib.learning.models.heads import HEADS, build_head
from workflow_lib.learning.models.losses import LOSSES, build_loss, class_weights
from workflow_lib.learning.models.model import CriteriaClassifier, build_model
from workflow_lib.learning.models.pooling import POOLING, build_pooling

__all__ = [
    "EncoderLoadError",
    "load_encoder",
    "HEADS",
    "build_head",
    "LOSSES",
    "build_loss",
    "class_weights",
    "CriteriaClassifier",
    "build_model",
    "POOLING",
    "build_pooling",
]
