"""Trainable networks for the cell spaces (see ``cell_network``)."""

from .cell_network import (OPS, AvgPool3x3, Cell, CellNetwork, NetworkConfig, ReLUConvBN,
                           ResidualReduction, Zero, build_network, count_flops, count_params,
                           make_op)

__all__ = ["OPS", "NetworkConfig", "CellNetwork", "Cell", "ResidualReduction", "ReLUConvBN",
           "Zero", "AvgPool3x3", "make_op", "build_network", "count_params", "count_flops"]
