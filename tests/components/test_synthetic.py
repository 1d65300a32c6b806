import numpy as np
import pytest

from components import schema
from components.synthetic import Drift, generate


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_churn_rate_within_two_points(seed):
    frame = generate(20_000, seed=seed)
    assert abs((frame[schema.LABEL_COLUMN] == "Yes").mean() - 0.25) <= 0.02


def test_same_seed_same_rows_other_seed_other_rows():
    a, b, c = generate(2000, seed=5), generate(2000, seed=5), generate(2000, seed=6)
    assert a.equals(b)
    assert not a.equals(c)


def test_layout_and_categories_follow_the_schema():
    frame = generate(5000, seed=1, with_truth=False)
    assert list(frame.columns) == list(schema.REQUIRED_COLUMNS)
    assert frame[schema.ID_COLUMN].is_unique
    for feature in schema.FEATURES:
        values = frame[feature.name]
        if feature.is_categorical:
            assert set(values.unique()) <= set(feature.categories), feature.name
        else:
            assert values.between(feature.minimum, feature.maximum).all(), feature.name


def test_fields_are_consistent():
    frame = generate(5000, seed=2)
    no_internet = frame["InternetService"] == "No"
    for col in schema.NO_INTERNET_COLUMNS:
        assert ((frame[col] == "No internet service") == no_internet).all(), col
    assert ((frame["MultipleLines"] == "No phone service") == (frame["PhoneService"] == "No")).all()
    ratio = frame["TotalCharges"] / (frame["tenure"] * frame["MonthlyCharges"])
    assert ratio[frame["tenure"] > 0].between(0.79, 1.21).all()
    assert (frame.loc[frame["tenure"] == 0, "TotalCharges"] == 0).all()


def test_truth_drives_the_label_and_risk_factors_point_the_right_way():
    frame = generate(50_000, seed=3)
    churn = frame[schema.LABEL_COLUMN] == "Yes"
    p = frame[schema.TRUTH_COLUMN]
    assert abs(p.mean() - churn.mean()) < 0.01
    by_contract = churn.groupby(frame["Contract"]).mean()
    assert by_contract["Month-to-month"] > by_contract["One year"] > by_contract["Two year"]
    assert np.corrcoef(frame["tenure"], p)[0, 1] < 0


def test_drift_knobs_move_the_population():
    base = generate(20_000, seed=4)
    drifted = generate(
        20_000,
        seed=4,
        drift=Drift(monthly_charges_scale=1.3, month_to_month_share=0.5, churn_logit_shift=1.0),
    )
    assert drifted["MonthlyCharges"].mean() > 1.2 * base["MonthlyCharges"].mean()
    assert (drifted["Contract"] == "Month-to-month").mean() > (
        base["Contract"] == "Month-to-month"
    ).mean() + 0.15
    assert (drifted[schema.LABEL_COLUMN] == "Yes").mean() > (base[schema.LABEL_COLUMN] == "Yes").mean() + 0.1


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="rows"):
        generate(0)
    with pytest.raises(ValueError, match="churn_rate"):
        generate(10, churn_rate=1.5)
