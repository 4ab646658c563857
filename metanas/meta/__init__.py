"""Meta-learning: one loss-agnostic Reptile (``reptile``) used by TNAS (GP marginal
likelihood) and BASE (ELBO), and the checkpoint format of meta-learned models
(``checkpoint``: ``model.safetensors`` + validated ``config.json``)."""

from .checkpoint import (CheckpointError, config_from_dict, config_to_dict, load_checkpoint,
                         save_checkpoint)
from .reptile import MetaTrainResult, ReptileStats, meta_train, reptile_step

__all__ = ["CheckpointError", "config_from_dict", "config_to_dict", "load_checkpoint",
           "save_checkpoint", "MetaTrainResult", "ReptileStats", "meta_train", "reptile_step"]
