"""Build a meta-dataset by live training (tasks x architectures -> triples + tasks Parquet).

Same code as ``python -m metanas.train.build``; see that module (or ``--help``) for the
options, the shard layout and the resume / Dask behaviour. Example (resumable, 2 workers)::

    python meta_datasets/build.py --out meta_datasets/digits_live --dataset digits \\
        --n-tasks 30 --ways 5 --archs-per-task 50 --epochs 12 --workers 2
"""

import sys

if __name__ == "__main__":
    try:
        from metanas.train.build import main
    except KeyboardInterrupt:  # Ctrl-C while importing: nothing started yet
        print("interrupted before the build started; rerun the command", file=sys.stderr)
        sys.exit(130)
    sys.exit(main(prog=f"python {sys.argv[0]}"))
