import sys

from loggend.cli import main

sys.exit(main())
