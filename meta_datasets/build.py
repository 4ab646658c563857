"""Build a meta-dataset by live training (tasks x architectures -> triples + tasks Parquet).

Same code as ``python -m metanas.train.build``; see that module (or ``--help``) for the
options, the shard layout and the resume / Dask behaviour. Example (resumable, 2 workers)::

    python meta_datasets/build.py --out meta_datasets/digits_live --dataset digits \\
        --n-tasks 30 --ways 5 --archs-per-task 50 --epochs 12 --workers 2
"""

import sys

from metanas.train.build import main

if __name__ == "__main__":
    sys.exit(main())
