"""Encoders: plain ``nn.Module``s turning architectures / datasets into vectors, injected into
surrogates (BoTorch-style composition).

- ``DAGEncoder`` (``dag_gnn``): D-VAE style GRU message passing over an architecture DAG
  (torch-geometric ``Data``/``Batch``, or a dense batch sharing one topology);
  ``CellArchEncoder`` wraps it for a cell space's op-index tuples.
- ``DatasetEncoder`` (``set_transformer``): two stacked Set Transformers over a dataset's
  per-class sample features, with a learned no-data embedding.
"""

from .dag_gnn import (CellArchEncoder, DAGEncoder, DAGEncoderConfig, GatedSumAggregation,
                      cell_node_onehots, cell_template, topological_levels)
from .set_transformer import (ISAB, MAB, PMA, SAB, DatasetEncoder, DatasetEncoderConfig,
                              SetEncoder, pad_classes)

__all__ = ["CellArchEncoder", "DAGEncoder", "DAGEncoderConfig", "GatedSumAggregation",
           "cell_node_onehots", "cell_template", "topological_levels", "ISAB", "MAB", "PMA",
           "SAB", "DatasetEncoder", "DatasetEncoderConfig", "SetEncoder", "pad_classes"]
