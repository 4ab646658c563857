"""metanas: meta-learning and transfer neural architecture search.

Pipeline, in the order of the sub-packages:
``spaces`` (what an architecture is) -> ``encoders`` (arch / dataset -> vectors) ->
``surrogates`` (posterior over candidates) -> ``strategies`` (ask/tell search methods) ->
``meta`` (meta-training) -> ``hub`` (save / load / share).
``benchmarks`` holds evaluators (tabular oracles), ``search`` the one search loop.
"""

__version__ = "0.1.0"
