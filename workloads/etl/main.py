"""Flex Template entry point (the image's FLEX_TEMPLATE_PYTHON_PY_FILE; also ``python -m workloads.etl.main``).

The Dockerfile copies this file to /template/main.py, outside the package, so running it as a
script does not put the package's own modules on sys.path as top-level names.
"""

import logging
import sys

from workloads.etl.pipeline import run

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(sys.argv[1:])
