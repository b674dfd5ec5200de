"""A worker process of a search: ``python -m tunefleet.worker_process ERROR_FILE``.

Started by :func:`tunefleet.execution.run_in_processes` (``n_jobs > 1``), which writes the
worker's job to its standard input; see :func:`tunefleet.execution.worker_process_main`.
"""

import sys

from tunefleet.execution import worker_process_main

if __name__ == "__main__":
    worker_process_main(sys.stdin.buffer, sys.argv[1])
