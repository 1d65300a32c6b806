import re

import pytest

from components.evaluate import BusinessConfig, evaluate_model
from components.train import TrainConfig, fit


@pytest.mark.parametrize("model_type", ["xgboost", "logreg", "random_forest"])
def test_same_data_and_seed_give_the_same_metrics(splits, model_type):
    train, valid, test = splits
    config = TrainConfig(model_type=model_type, search_budget=2, seed=3)
    runs = [
        evaluate_model(fit(train, config, valid=valid)[0], valid, test, BusinessConfig()) for _ in range(2)
    ]
    keys = ("roc_auc", "pr_auc", "log_loss", "brier", "threshold", "expected_profit")
    # Threaded tree averaging (random forest) may differ in the last bit, nothing more.
    assert {k: runs[0][k] for k in keys} == pytest.approx({k: runs[1][k] for k in keys}, rel=1e-12, abs=1e-12)
    assert runs[0]["roc_auc"] > 0.75  # learned something real


def test_search_summary_reports_the_best_candidate(splits):
    model, summary = fit(splits[0], TrainConfig(search_budget=3, seed=1), valid=splits[1])
    assert 0.7 < summary["cv_roc_auc"] <= 1.0
    assert set(summary["best_params"]) >= {"n_estimators", "max_depth", "scale_pos_weight"}
    classifier = model.named_steps["classifier"].estimator  # inside its calibration
    assert classifier.get_params()["max_depth"] == summary["best_params"]["max_depth"]
    assert summary["calibration"]["method"] in ("sigmoid", "isotonic")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"model_type": "svm"}, "model_type"),
        ({"search_budget": 0}, "search_budget"),
        ({"cv_folds": 1}, "cv_folds"),
    ],
)
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**kwargs)


def test_single_class_train_split_is_refused(splits):
    train = splits[0]
    with pytest.raises(ValueError, match="single class"):
        fit(train[train["Churn"] == 0], TrainConfig(search_budget=1), valid=splits[1])


def test_search_reports_progress_per_candidate(splits):
    lines: list[str] = []
    _, summary = fit(
        splits[0], TrainConfig(model_type="logreg", search_budget=3, cv_folds=2), progress=lines.append,
        valid=splits[1],
    )  # fmt: skip
    calibrating = [line for line in lines if line.startswith("train: calibrat")]
    assert len(calibrating) == 2 and lines[-2:] == calibrating  # after the search
    lines = lines[:-2]
    assert [line.split()[2] for line in lines] == ["1/3", "2/3", "3/3"]
    best = [float(re.search(r"best ([0-9.]+)", line).group(1)) for line in lines]
    assert best == sorted(best) and best[-1] == pytest.approx(summary["cv_roc_auc"], abs=5e-5)
    assert all(re.search(r"cv roc_auc 0\.\d{4} .* \d+s elapsed$", line) for line in lines), lines
