"""A trainer whose serving signature wrongly requires the label: it evaluates fine, then cannot serve."""

from trainer_module import run, serving


def run_fn(fn_args):
    original = serving.serving_feature_spec
    # Keeping the labels in the parsing spec makes them required inputs of serving_default.
    serving.serving_feature_spec = lambda raw_spec, labels: raw_spec
    try:
        run.run_fn(fn_args)
    finally:
        serving.serving_feature_spec = original
