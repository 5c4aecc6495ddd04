"""Put the pickled model into BentoML's model store (BENTOML_HOME): bento_setup.py MODEL.pkl."""

import pickle
import sys

import bentoml

with open(sys.argv[1], "rb") as f:
    model = pickle.load(f)
saved = bentoml.sklearn.save_model("churn", model)
print(saved.tag)
