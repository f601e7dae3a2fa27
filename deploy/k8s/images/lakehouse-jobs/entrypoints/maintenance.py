"""spark-submit entry point of the storage maintenance job (ScheduledSparkApplication simgate-maintenance).

Like wap.py: imports the job from the installed package, because spark-submit runs this file as a
script outside any package.
"""

import sys

from simgate.lakehouse.maintenance import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
