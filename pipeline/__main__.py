"""`python -m pipeline`: see pipeline/cli.py."""

from pipeline.cli import main
from pipeline.storage.filesystems import finish

# The true status also after S3 use, when tensorflow-io would abort the interpreter's teardown.
finish(main())
