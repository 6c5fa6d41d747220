"""`python -m pipeline`: run the pipeline locally and print what it did."""

from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    parser.add_argument("--output-root", default="outputs", help="where everything is written")
    parser.add_argument(
        "--data-root", default=None, help="directory of CSV files (default: the bundled penguins)"
    )
    parser.add_argument("--train-steps", type=int, default=None, help="training step budget")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)

    from components.data_gate import DataValidationError
    from pipeline.config import PipelineConfig
    from pipeline.local_runner import log_to_file, run_pipeline

    changes = {"output_root": os.path.abspath(args.output_root)}
    if args.data_root:
        changes["data_root"] = os.path.abspath(args.data_root)
    if args.train_steps is not None:
        changes["train_steps"] = args.train_steps
    try:
        config = PipelineConfig(**changes)
    except ValueError as error:
        print(f"error: invalid configuration: {error}", file=sys.stderr)
        return 2

    log_path = log_to_file(config)
    try:
        summary = run_pipeline(config)
    except DataValidationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # noqa: BLE001 - the full traceback is in the log file
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        print(
            f"error: the pipeline failed: {type(error).__name__}: {first_line} (full log: {log_path})",
            file=sys.stderr,
        )
        return 1

    print(f"Run {summary.run_id}")
    for node, state in summary.node_states.items():
        print(f"  {node:32s} {state}")
    if summary.blessed and summary.pushed_destination:
        print(f"Model blessed and pushed: {summary.pushed_destination}")
    elif summary.blessed and summary.already_served:
        print(f"Model blessed; it is already served as {summary.already_served} (not pushed again)")
    elif summary.blessed:
        print("Model blessed; an earlier run of this same model already handled the push (cached)")
    else:
        print("Model NOT blessed: it did not meet the evaluation thresholds; nothing was pushed.")
    print(f"Serving directory: {config.serving_dir}")
    print(f"Metadata store:    {config.metadata_path}")
    print(f"Log:               {log_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
