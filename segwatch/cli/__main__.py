import sys

from segwatch.cli import main

sys.exit(main())
