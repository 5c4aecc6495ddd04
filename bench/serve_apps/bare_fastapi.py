"""The bare FastAPI app of bench/serve.py: what a developer writes in ten minutes.

An ``async def`` route, ``await request.json()``, a pandas DataFrame from the
records, ``model.predict``, JSON back. No validation, no logging. Run with
uvicorn (``uvicorn[standard]``: uvloop + httptools), one worker:

    SERVE_BENCH_MODEL=model_v1.pkl uvicorn bare_fastapi:app --host 127.0.0.1 --port 8000
"""

import os
import pickle

import pandas as pd
from fastapi import FastAPI, Request

with open(os.environ["SERVE_BENCH_MODEL"], "rb") as f:
    model = pickle.load(f)

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@app.post("/predict")
async def predict(request: Request) -> dict:
    body = await request.json()
    frame = pd.DataFrame(body["inputs"])
    return {"predictions": model.predict(frame).tolist()}
