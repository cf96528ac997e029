import sys

from ringwatch.cli import main

sys.exit(main())
