#!/usr/bin/env python
"""Search a NAS task: pretrained meta-surrogates (TNAS, BASE) and single-task baselines.

Run ``python adapt.py --help`` for every option.
"""

import sys

from metanas.cli import adapt_main

if __name__ == "__main__":
    sys.exit(adapt_main())
