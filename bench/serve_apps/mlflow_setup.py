"""Save the pickled model as an MLflow model folder: mlflow_setup.py MODEL.pkl EXAMPLE.pkl OUT.

cloudpickle serialization (ANCHORS: MLflow 3's skops default needs the trusted
types listed), the signature inferred from a five-row input example. Served
with ``mlflow models serve -m OUT --env-manager local``.
"""

import pickle
import sys

import mlflow.sklearn

with open(sys.argv[1], "rb") as f:
    model = pickle.load(f)
with open(sys.argv[2], "rb") as f:
    example = pickle.load(f)
mlflow.sklearn.save_model(
    model, sys.argv[3], serialization_format="cloudpickle", input_example=example
)
print(sys.argv[3])
