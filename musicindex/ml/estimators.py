"""The scikit-learn genre classifiers: each kind's pipeline and its parameter grid (documented in docs/models.md).

``knn``, ``logreg`` and ``svm`` are ``StandardScaler -> reduce -> classifier`` where ``reduce`` is ``passthrough``,
``PCA(0.95 of the variance)`` or ``SelectKBest(f_classif, k=20)``, chosen by the search like any other
hyper-parameter. The tree models (``forest``, ``tree``, ``gbm``) read the raw inputs (no scaling: a decision
tree's splits then read in the features' own units). ``svm`` is one kind whose grid holds both kernels (RBF and
linear): the search picks the kernel. Its class probabilities (Platt scaling) are fitted only on the chosen
configuration (``FINAL_PARAMS``), not in every fold of the search.

A grid is a dict of lists, or a list of such dicts (alternatives, as in scikit-learn); keys are the pipeline's
parameters without the ``clf__`` prefix, plus ``reduce`` and ``penalty`` (``l2`` / ``l1``, logistic regression's
``l1_ratio`` 0 / 1).
"""

from __future__ import annotations

from typing import Any

from musicindex.vocab import FEATURE_NAMES, SKLEARN_CLASSIFIER_KINDS

REDUCERS = ("none", "pca95", "kbest20")
SCALED = ("knn", "logreg", "svm")
"""Kinds whose pipeline standardises its input (and may reduce it)."""

Grid = dict[str, list] | list[dict[str, list]]

GRIDS: dict[str, Grid] = {
    "knn": {
        "reduce": ["none", "pca95", "kbest20"],
        "n_neighbors": [1, 3, 5, 7, 9, 11, 15],
        "weights": ["uniform", "distance"],
        "metric": ["euclidean", "manhattan", "cosine"],
    },
    "logreg": {"reduce": ["none", "pca95"], "C": [0.01, 0.1, 1.0, 10.0, 100.0], "penalty": ["l2", "l1"]},
    "svm": [
        {"reduce": ["none", "pca95"], "kernel": ["rbf"], "C": [0.1, 1.0, 10.0, 100.0], "gamma": ["scale", 0.003]},
        {"reduce": ["none"], "kernel": ["linear"], "C": [0.001, 0.01, 0.1, 1.0]},
    ],
    "forest": {
        "n_estimators": [300],
        "max_features": ["sqrt", 0.3],
        "min_samples_leaf": [1, 3],
        "class_weight": [None, "balanced"],
    },
    "tree": {"max_depth": [3, 5, 8, None], "min_samples_leaf": [1, 5], "criterion": ["gini", "entropy"]},
    "gbm": {"learning_rate": [0.05, 0.1], "max_leaf_nodes": [15, 31], "l2_regularization": [0.0, 1.0]},
}
QUICK_GRIDS: dict[str, Grid] = {
    "knn": {"reduce": ["none"], "n_neighbors": [3, 7], "weights": ["distance"], "metric": ["euclidean", "cosine"]},
    "logreg": {"reduce": ["none"], "C": [0.1, 1.0], "penalty": ["l2"]},
    "svm": [{"reduce": ["none"], "kernel": ["rbf"], "C": [1.0, 10.0]}, {"reduce": ["none"], "kernel": ["linear"]}],
    "forest": {"n_estimators": [40], "max_features": ["sqrt"]},
    "tree": {"max_depth": [3, 5]},
    "gbm": {"max_iter": [25], "learning_rate": [0.1]},
}
FINAL_PARAMS: dict[str, dict[str, Any]] = {"svm": {"clf__probability": True}}
"""Set on the chosen configuration before its final fit (what the search does not need). The SVM's probabilities
are libsvm's Platt scaling (``probability=True``, an internal 5-fold fit that copes with tiny classes);
scikit-learn 1.9 deprecates it for 1.11 in favour of ``CalibratedClassifierCV(SVC(), ensemble=False)``, whose
stratified folds refuse a class smaller than the folds: revisit when 1.11 is out (the warning is filtered in
``classical.quiet``; pyproject.toml keeps scikit-learn below 1.11 until then, so a fresh install cannot lose the
svm kind)."""


def grid_for(kind: str, quick: bool) -> Grid:
    if kind not in SKLEARN_CLASSIFIER_KINDS:
        raise ValueError(f"{kind!r} is not a scikit-learn classifier kind ({', '.join(SKLEARN_CLASSIFIER_KINDS)})")
    return (QUICK_GRIDS if quick else GRIDS)[kind]


def reducer(name: str):
    from sklearn.decomposition import PCA
    from sklearn.feature_selection import SelectKBest, f_classif

    if name == "none":
        return "passthrough"
    if name == "pca95":
        return PCA(n_components=0.95, svd_solver="full")
    if name == "kbest20":
        return SelectKBest(f_classif, k=20)
    raise ValueError(f"unknown reducer {name!r}; choose one of {REDUCERS}")


def classifier(kind: str, seed: int):
    """The bare estimator of a kind (before the search sets its parameters)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    if kind == "knn":
        return KNeighborsClassifier()
    if kind == "logreg":
        return LogisticRegression(solver="saga", max_iter=5000, tol=1e-3, random_state=seed)
    if kind == "svm":
        return SVC(probability=False, cache_size=500, random_state=seed)
    if kind == "forest":
        return RandomForestClassifier(n_estimators=300, n_jobs=1, random_state=seed)
    if kind == "tree":
        return DecisionTreeClassifier(random_state=seed)
    if kind == "gbm":
        return HistGradientBoostingClassifier(max_iter=200, early_stopping="auto", random_state=seed)
    raise ValueError(f"{kind!r} is not a scikit-learn classifier kind ({', '.join(SKLEARN_CLASSIFIER_KINDS)})")


def pipeline(kind: str, seed: int):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if kind in SCALED:
        return Pipeline([("scale", StandardScaler()), ("reduce", "passthrough"), ("clf", classifier(kind, seed))])
    return Pipeline([("clf", classifier(kind, seed))])


def configured(kind: str, sk_params: dict[str, Any], seed: int):
    """The kind's pipeline with the chosen parameters and its final-fit settings (``FINAL_PARAMS``)."""
    return pipeline(kind, seed).set_params(**sk_params, **FINAL_PARAMS.get(kind, {}))


def _sk_one(grid: dict[str, list]) -> dict[str, list]:
    out: dict[str, list] = {}
    for key, values in grid.items():
        if key == "reduce":
            out["reduce"] = [reducer(v) for v in values]
        elif key == "penalty":  # l2 / l1 as the elastic-net mixing parameter of LogisticRegression
            out["clf__l1_ratio"] = [0.0 if v == "l2" else 1.0 for v in values]
        else:
            out[f"clf__{key}"] = list(values)
    return out


def sk_grid(grid: Grid) -> dict[str, list] | list[dict[str, list]]:
    """The documented grid in scikit-learn's parameter names."""
    if isinstance(grid, list):
        return [_sk_one(g) for g in grid]
    return _sk_one(grid)


def describe(best: dict[str, Any]) -> dict[str, Any]:
    """Chosen scikit-learn parameters in the documented names."""
    out: dict[str, Any] = {}
    for key, value in best.items():
        if key == "reduce":
            out["reduce"] = next((n for n in REDUCERS if repr(reducer(n)) == repr(value)), repr(value))
        elif key == "clf__l1_ratio":
            out["penalty"] = "l1" if value == 1.0 else "l2"
        else:
            out[key.removeprefix("clf__")] = value
    return out


def candidates(grid: Grid) -> int:
    from sklearn.model_selection import ParameterGrid

    return len(ParameterGrid(sk_grid(grid)))


def input_names(n_columns: int) -> list[str]:
    """Names of a model's input columns: the 43 feature names, else ``dim0 ...`` (an embedding)."""
    if n_columns == len(FEATURE_NAMES):
        return list(FEATURE_NAMES)
    return [f"dim{i}" for i in range(n_columns)]


def explain(kind: str, model: Any, n_columns: int, top: int = 10) -> dict[str, Any]:
    """What a fitted tree model shows in the report: the decision tree's depth, leaves and top splits (as text);
    the forest's and the gbm's most important inputs (impurity importance; the gbm has none: skipped)."""
    names = input_names(n_columns)
    clf = model.named_steps["clf"]
    if kind == "tree":
        from sklearn.tree import export_text

        return {
            "depth": int(clf.get_depth()),
            "leaves": int(clf.get_n_leaves()),
            "top_splits": export_text(clf, feature_names=names, max_depth=3, decimals=3),
        }
    if kind == "forest":
        imp = clf.feature_importances_
        order = imp.argsort()[::-1][:top]
        return {"importances": {names[i]: float(imp[i]) for i in order}}
    return {}
