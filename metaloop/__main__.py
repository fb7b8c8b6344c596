import sys

from metaloop.cli import main

sys.exit(main())
