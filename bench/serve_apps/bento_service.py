"""The BentoML 1.4 service of bench/serve.py, written as BentoML's docs show it.

The model is the pickled Pipeline, saved into the BentoML model store
(``BENTOML_HOME``) by ``bento_setup.py``. One worker; a sync API, as in
BentoML's scikit-learn examples. Body: ``{"inputs": [{col: value}, ...]}``.

    BENTOML_HOME=... bentoml serve bento_service:Churn --host 127.0.0.1 --port 8000
"""

from typing import Any

import bentoml
import pandas as pd


@bentoml.service(workers=1)
class Churn:
    model_ref = bentoml.models.BentoModel("churn:latest")

    def __init__(self) -> None:
        self.model = bentoml.sklearn.load_model(self.model_ref)

    @bentoml.api
    def predict(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        return {"predictions": self.model.predict(pd.DataFrame(inputs)).tolist()}
