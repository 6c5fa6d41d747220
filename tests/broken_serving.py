"""A trainer whose serving signature wrongly requires the label: it evaluates fine, then cannot serve."""

from trainer_module import run


def run_fn(fn_args):
    original = run.make_serving_signatures

    def label_required(model, tf_transform_output, label_key, task):
        # Keeping the label in the parsing spec makes it a required input of serving_default.
        return original(model, tf_transform_output, "<no label removed>", task)

    run.make_serving_signatures = label_required
    try:
        run.run_fn(fn_args)
    finally:
        run.make_serving_signatures = original
