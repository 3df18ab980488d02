import sys

from fastagi.cli import main

sys.exit(main())
