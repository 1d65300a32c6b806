"""skl2onnx converters for the project's own transformers and for XGBoost.

Registering them lets ``skl2onnx.convert_sklearn`` turn the whole fitted Pipeline
(features + encoders + classifier) into one ONNX graph.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from onnx import TensorProto
from skl2onnx import update_registered_converter
from skl2onnx.algebra.onnx_ops import (
    OnnxCast,
    OnnxConcat,
    OnnxDiv,
    OnnxGather,
    OnnxGreaterOrEqual,
    OnnxIdentity,
    OnnxLabelEncoder,
    OnnxMax,
    OnnxReduceSumApi11,
    OnnxSub,
)
from skl2onnx.common.data_types import FloatTensorType

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


@cache
def register() -> None:
    """Register every converter the project's pipelines need (idempotent)."""
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
    from xgboost import XGBClassifier

    update_registered_converter(ChargeFeatures, "ChurnChargeFeatures", _charge_shape, _charge_convert)
    update_registered_converter(ServiceCount, "ChurnServiceCount", _service_shape, _service_convert)
    update_registered_converter(
        XGBClassifier,
        "XGBoostXGBClassifier",
        calculate_linear_classifier_output_shapes,
        convert_xgboost,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )
