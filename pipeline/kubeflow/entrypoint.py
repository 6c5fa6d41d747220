"""The container command of every compiled task: TFX's Kubeflow v2 entrypoint
(`tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor`, same arguments), with TensorFlow's
s3:// filesystem registered and the task's true exit status: tensorflow-io aborts the interpreter's teardown
after any S3 access (status 134), which KFP would report as a failed task (pipeline/storage/filesystems.py).
"""

from __future__ import annotations

import sys
import traceback

from pipeline.storage.filesystems import finish, register_s3


def run(argv: list[str]) -> int:
    from absl import app
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor as tfx_entrypoint

    register_s3()
    try:
        app.run(tfx_entrypoint.main, argv=[sys.argv[0], *argv], flags_parser=tfx_entrypoint._parse_flags)  # noqa: SLF001
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except BaseException:  # noqa: BLE001 - the task failed: its traceback, then status 1
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    finish(run(sys.argv[1:]))
