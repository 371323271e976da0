import sys

from cdr.cli import main

sys.exit(main())
