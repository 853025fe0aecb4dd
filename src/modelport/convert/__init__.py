"""Converting a registered version to another format, proven equivalent first.

``onnx`` turns scikit-learn, XGBoost and LightGBM models into ONNX graphs (skl2onnx,
onnxmltools), ``pmml`` turns them into PMML documents (sklearn2pmml), ``quantize``
shrinks an ONNX graph (onnxruntime dynamic quantization), ``equivalence`` compares the
source's and the converted model's predictions, and ``service`` ties them to the
registry: a converted model is registered as a new version linked to its source only
when the check passes.
"""
