"""Live evaluation: train an architecture's network on a real image dataset.

- ``data``: image sources (``digits``, folder of class sub-folders, ``.npz``, ``datasets`` on
  disk or Hub id), ``TaskSpec`` (class subsets, ``digits:classes=0,3,5`` ids), seeded
  stratified splits, ``build_task`` -> ``TaskData``.
- ``features``: the fixed per-class sample featuriser for the dataset encoder.
- ``trainer``: ``TrainConfig`` (the recipe) and ``train_and_evaluate``.
- ``build``: the meta-dataset builder (``python -m metanas.train.build``).

The evaluators (``LiveBenchmark``, ``DaskEvaluator``) live in ``metanas.benchmarks.live``.
"""

from .data import (DEFAULT_SPLIT, ImageSource, TaskData, TaskSpec, as_task_spec, build_task,
                   load_source, stratified_split, task_data_from_arrays)
from .features import (FEAT_DIM, FEATURISER, N_PER_CLASS, featurise, sample_features,
                       task_sample_features)
from .trainer import TrainConfig, TrainResult, resolve_device, train_and_evaluate

__all__ = ["DEFAULT_SPLIT", "ImageSource", "TaskData", "TaskSpec", "as_task_spec", "build_task",
           "load_source", "stratified_split", "task_data_from_arrays", "FEAT_DIM", "FEATURISER",
           "N_PER_CLASS", "featurise", "sample_features", "task_sample_features", "TrainConfig",
           "TrainResult", "resolve_device", "train_and_evaluate"]
