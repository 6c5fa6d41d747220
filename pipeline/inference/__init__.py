"""Batch inference: rows scored by a pushed model's `serving_default`, as TF Serving would score them, through
Beam (tfx-bsl's RunInference), into a CSV of the input columns followed by the prediction columns.

rows.py reads and checks the CSV files a model scores and encodes them as its serving signature's
tf.Examples; columns.py names and fills the prediction columns; scoring.py is the Beam job and the output
file, written whole or not at all; versions.py finds the pushed version to score with.
"""
