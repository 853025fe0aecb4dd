"""A hand-written Starlette ``/predict``, as people write one: no batching, the model
called on the event loop, one request at a time.

``{"features": [[...], ...]}`` → ``model.predict(np.asarray(features))`` →
``{"predictions": [...]}``. The model is a joblib file named by ``MODEL_PATH`` (the
benchmark's own freshly fitted model: a trusted file)::

    MODEL_PATH=model.joblib uvicorn starlette_app:app --app-dir benchmarks/apps
"""

from __future__ import annotations

import os
import warnings

import joblib
import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

# The iris model was fitted on a DataFrame; arrays carry no feature names.
warnings.filterwarnings("ignore", message="X does not have valid feature names")

model = joblib.load(os.environ["MODEL_PATH"])


async def predict(request: Request) -> JSONResponse:
    payload = await request.json()
    predictions = model.predict(np.asarray(payload["features"]))
    return JSONResponse({"predictions": predictions.tolist()})


app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
