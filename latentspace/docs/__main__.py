"""`python -m latentspace.docs [--check]`: rewrite (or check) the generated blocks of README.md and docs/."""
import sys

from latentspace.docs.cli import main

sys.exit(main())
