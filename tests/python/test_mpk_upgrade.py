"""Archives from another scikit-learn: a parameter the archive lacks gets the
installed default with a warning naming it; one the installed class does not
know is a FormatError naming it, unless load(..., unknown_params="drop")."""

import warnings

import msgpack
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

import mpk

X = np.random.RandomState(0).rand(30, 4)
Y = np.arange(30) % 2


def _models():
    return {"forest": RandomForestClassifier(n_estimators=3, random_state=0).fit(X, Y),
            "logreg": LogisticRegression().fit(X, Y)}


@pytest.mark.parametrize("name", ["forest", "logreg"])
def test_older_writer_missing_param_gets_default(name, tmp_path):
    est = _models()[name]
    m = msgpack.unpackb(mpk.dumps(est), strict_map_key=False)
    gone = "ccp_alpha" if name == "forest" else "l1_ratio"
    del m["params"][gone]
    path = tmp_path / "old.mpk"
    path.write_bytes(msgpack.packb(m, use_bin_type=True))
    with pytest.warns(mpk.ParamDefaultWarning, match=f"params/{gone}: not in the archive"):
        back = mpk.load(path)
    assert getattr(back, gone) == type(est)().get_params()[gone]
    assert np.array_equal(back.predict_proba(X), est.predict_proba(X))


@pytest.mark.parametrize("name", ["forest", "logreg"])
def test_newer_writer_unknown_param(name, tmp_path):
    est = _models()[name]
    m = msgpack.unpackb(mpk.dumps(est), strict_map_key=False)
    m["params"]["shiny_new_option"] = 3
    path = tmp_path / "new.mpk"
    path.write_bytes(msgpack.packb(m, use_bin_type=True))
    with pytest.raises(mpk.FormatError, match="params/shiny_new_option: 'shiny_new_option' is not a parameter"):
        mpk.load(path)
    with pytest.warns(UserWarning, match="shiny_new_option.*dropped"):
        back = mpk.load(path, unknown_params="drop")
    assert not hasattr(back, "shiny_new_option")
    assert np.array_equal(back.predict(X), est.predict(X))


def test_unknown_param_in_nested_tree(tmp_path):
    est = _models()["forest"]
    m = msgpack.unpackb(mpk.dumps(est), strict_map_key=False)
    m["weights"]["estimators_"][1]["params"]["monotonic_cst"] = None
    with pytest.raises(mpk.FormatError, match="^weights/estimators_/1/params/monotonic_cst: "):
        mpk.loads(msgpack.packb(m, use_bin_type=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = mpk.loads(msgpack.packb(m, use_bin_type=True), unknown_params="drop")
    assert np.array_equal(back.predict(X), est.predict(X))
    with pytest.raises(ValueError):
        mpk.loads(b"", unknown_params="keep")
