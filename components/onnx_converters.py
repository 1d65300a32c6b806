"""skl2onnx converters for the project's own transformers, XGBoost and the calibration.

Registering them lets ``skl2onnx.convert_sklearn`` turn the whole fitted Pipeline
(features + encoders + classifier + calibration) into one ONNX graph.

skl2onnx 1.20 cannot convert scikit-learn's ``CalibratedClassifierCV`` over a prefit model
(``FrozenEstimator`` has no converter), so :class:`~components.calibration.CalibratedClassifier`
has its own: the wrapped classifier's converter, then the calibration map as plain ONNX ops on
its P(churn) column (sigmoid of the affine log-odds; isotonic as a piecewise-linear lookup).
"""

from __future__ import annotations

from functools import cache

import numpy as np
from onnx import TensorProto
from skl2onnx import update_registered_converter
from skl2onnx.algebra.onnx_operator import OnnxSubEstimator
from skl2onnx.algebra.onnx_ops import (
    OnnxAdd,
    OnnxCast,
    OnnxClip,
    OnnxConcat,
    OnnxDiv,
    OnnxGather,
    OnnxGreaterOrEqual,
    OnnxIdentity,
    OnnxLabelEncoder,
    OnnxLog,
    OnnxMax,
    OnnxMin,
    OnnxMul,
    OnnxReduceSumApi11,
    OnnxReshape,
    OnnxSigmoid,
    OnnxSub,
)
from skl2onnx.common.data_types import FloatTensorType

from components.calibration import EPS, CalibratedClassifier, Calibration
from components.features import CHARGE_FEATURES, TENURE_BAND_EDGES, ChargeFeatures, ServiceCount

ML_OPSET = 3


def _single_input(operator, opv):
    """skl2onnx hands several same-typed columns over either merged or one by one."""
    inputs = operator.inputs
    return inputs[0] if len(inputs) == 1 else OnnxConcat(*inputs, axis=1, op_version=opv)


def _charge_shape(operator):
    n_in = sum(v.get_second_dimension() or 1 for v in operator.inputs)
    operator.outputs[0].type = FloatTensorType(
        [operator.inputs[0].get_first_dimension(), n_in + len(CHARGE_FEATURES)]
    )


def _charge_convert(scope, operator, container):
    op, opv = operator.raw_operator, container.target_opset
    X = _single_input(operator, opv)

    def column(idx):
        return OnnxGather(X, np.array([idx], dtype=np.int64), axis=1, op_version=opv)

    tenure = column(op.tenure_idx_)
    avg = OnnxDiv(column(op.total_idx_), OnnxMax(tenure, np.array([1.0], dtype=np.float32), op_version=opv),
                  op_version=opv)  # fmt: skip
    increase = OnnxSub(column(op.monthly_idx_), avg, op_version=opv)
    reached = OnnxGreaterOrEqual(tenure, np.asarray(TENURE_BAND_EDGES, dtype=np.float32), op_version=opv)
    band = OnnxReduceSumApi11(
        OnnxCast(reached, to=TensorProto.FLOAT, op_version=opv), axes=[1], keepdims=1, op_version=opv
    )
    out = OnnxConcat(X, avg, increase, band, axis=1, op_version=opv)
    OnnxIdentity(out, op_version=opv, output_names=operator.outputs[:1]).add_to(scope, container)


def _service_shape(operator):
    operator.outputs[0].type = FloatTensorType([operator.inputs[0].get_first_dimension(), 1])


def _service_convert(scope, operator, container):
    opv = container.target_opset
    X = _single_input(operator, opv)
    # ai.onnx.ml LabelEncoder maps strings to floats element-wise; Equal on strings needs opset 19.
    is_yes = OnnxLabelEncoder(
        X, keys_strings=["Yes"], values_floats=[1.0], default_float=0.0, op_version=ML_OPSET
    )
    total = OnnxReduceSumApi11(is_yes, axes=[1], keepdims=1, op_version=opv)
    OnnxIdentity(total, op_version=opv, output_names=operator.outputs[:1]).add_to(scope, container)


def _f32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


def _calibrated_ops(p, calibration: Calibration, opv):
    """ONNX ops computing ``calibration.apply`` on the (N, 1) float tensor ``p``."""
    if calibration.method == "sigmoid":
        clipped = OnnxClip(p, _f32(EPS), _f32(1.0 - EPS), op_version=opv)
        log_odds = OnnxSub(
            OnnxLog(clipped, op_version=opv),
            OnnxLog(OnnxSub(_f32([1.0]), clipped, op_version=opv), op_version=opv),
            op_version=opv,
        )
        slope, intercept = calibration.params["slope"], calibration.params["intercept"]
        z = OnnxAdd(OnnxMul(log_odds, _f32([slope]), op_version=opv), _f32([intercept]), op_version=opv)
        return OnnxSigmoid(z, op_version=opv)
    # isotonic: np.interp(p, x, y) = y[k] + slope[k]·(p - x[k]) on the segment k holding p, with p
    # clipped to [x[0], x[-1]]; k = how many inner knots are <= p (a (N, K-2) comparison).
    x, y = np.asarray(calibration.params["x"]), np.asarray(calibration.params["y"])
    clipped = OnnxMin(OnnxMax(p, _f32([x[0]]), op_version=opv), _f32([x[-1]]), op_version=opv)
    passed = OnnxGreaterOrEqual(clipped, _f32(x[1:-1]), op_version=opv)
    segment = OnnxReduceSumApi11(
        OnnxCast(passed, to=TensorProto.INT64, op_version=opv), axes=[1], keepdims=1, op_version=opv
    )  # (N, 1)
    segment = OnnxReshape(segment, np.array([-1], dtype=np.int64), op_version=opv)

    def at(table):
        return OnnxGather(_f32(table), segment, axis=0, op_version=opv)  # (N,)

    flat = OnnxReshape(clipped, np.array([-1], dtype=np.int64), op_version=opv)
    slopes = np.diff(y) / np.diff(x)
    q = OnnxAdd(at(y[:-1]), OnnxMul(at(slopes), OnnxSub(flat, at(x[:-1]), op_version=opv), op_version=opv),
                op_version=opv)  # fmt: skip
    return OnnxReshape(q, np.array([-1, 1], dtype=np.int64), op_version=opv)


def _calibrated_convert(scope, operator, container):
    op, opv = operator.raw_operator, container.target_opset
    base = OnnxSubEstimator(op.estimator, operator.inputs[0], op_version=opv, options={"zipmap": False})
    p = OnnxGather(base[1], np.array([1], dtype=np.int64), axis=1, op_version=opv)  # (N, 1) P(churn)
    q = _calibrated_ops(p, op.calibration, opv)
    probabilities = OnnxConcat(OnnxSub(_f32([1.0]), q, op_version=opv), q, axis=1, op_version=opv)
    # label: the calibrated 0.5 cut, as CalibratedClassifier.predict (classes are 0 and 1)
    label = OnnxReshape(
        OnnxCast(OnnxGreaterOrEqual(q, _f32([0.5]), op_version=opv), to=TensorProto.INT64, op_version=opv),
        np.array([-1], dtype=np.int64), op_version=opv,
    )  # fmt: skip
    OnnxIdentity(label, op_version=opv, output_names=operator.outputs[:1]).add_to(scope, container)
    OnnxIdentity(probabilities, op_version=opv, output_names=operator.outputs[1:2]).add_to(scope, container)


@cache
def register() -> None:
    """Register every converter the project's pipelines need (idempotent)."""
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
    from xgboost import XGBClassifier

    update_registered_converter(ChargeFeatures, "ChurnChargeFeatures", _charge_shape, _charge_convert)
    update_registered_converter(ServiceCount, "ChurnServiceCount", _service_shape, _service_convert)
    update_registered_converter(
        CalibratedClassifier,
        "ChurnCalibratedClassifier",
        calculate_linear_classifier_output_shapes,
        _calibrated_convert,
        options={"zipmap": [False], "nocl": [False]},
    )
    update_registered_converter(
        XGBClassifier,
        "XGBoostXGBClassifier",
        calculate_linear_classifier_output_shapes,
        convert_xgboost,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )
