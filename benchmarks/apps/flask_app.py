"""The Flask ``/predict`` of the blog tutorials, served by gunicorn's sync worker.

Same contract as ``starlette_app``: ``{"features": [[...]]}`` → ``{"predictions": [...]}``,
model from the joblib file named by ``MODEL_PATH`` (the benchmark's own file)::

    MODEL_PATH=model.joblib gunicorn -w 1 --chdir benchmarks/apps flask_app:app
"""

from __future__ import annotations

import os
import warnings

import joblib
import numpy as np
from flask import Flask, jsonify, request

# The iris model was fitted on a DataFrame; arrays carry no feature names.
warnings.filterwarnings("ignore", message="X does not have valid feature names")

app = Flask(__name__)
model = joblib.load(os.environ["MODEL_PATH"])


@app.route("/predict", methods=["POST"])
def predict():  # type: ignore[no-untyped-def]
    data = request.get_json()
    prediction = model.predict(np.array(data["features"]))
    return jsonify({"predictions": prediction.tolist()})
