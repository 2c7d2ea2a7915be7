import sys

from audit.cli.commands import main

sys.exit(main())
