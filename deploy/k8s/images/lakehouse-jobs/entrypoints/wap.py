"""spark-submit entry point of the Write-Audit-Publish job (SparkApplication mainApplicationFile).

spark-submit runs its main file as a script, outside any package, so the job module itself
(simgate.lakehouse.wap, which uses relative imports) cannot be that file; this one imports it from the
installed package and passes the arguments through.
"""

import sys

from simgate.lakehouse.wap import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
