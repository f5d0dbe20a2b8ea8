"""The allow-list: which classes mpk builds, and for each one which fitted
attributes it writes and accepts, of what kind, in which section.

Attribute kinds (checked on load, used to pick the encoding on save):

  array        ndarray of a plain numeric/bool dtype
  labels       ndarray of numbers, bools or strings (``classes_``)
  array_list   list of ndarrays (MLP ``coefs_``)
  array_or_num ndarray or a number (``intercept_`` of LinearRegression/Ridge)
  opt_array    nil or ndarray
  int_or_array int or ndarray (``n_samples_seen_``)
  int, float, bool, str, opt_float, float_list, opt_float_list
  vocab        map str -> int, a permutation of 0..n-1
  csr          scipy csr_matrix
  str_objarray list of str, rebuilt as an object ndarray (``feature_names_in_``)
"""

from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, SGDClassifier
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import LinearSVC


class Attr:
    __slots__ = ("name", "kind", "section", "save", "required", "choices")

    def __init__(self, name, kind, section="xtra", save=True, required=False, choices=None):
        self.name = name
        self.kind = kind
        self.section = section
        self.save = save
        self.required = required
        self.choices = choices


class Spec:
    def __init__(self, cls, attrs, extra_keys=(), features=None):
        self.cls = cls
        self.name = cls.__name__
        common = [Attr("n_features_in_", "int"), Attr("feature_names_in_", "str_objarray")]
        self.attrs = {a.name: a for a in list(attrs) + common}
        self.extra_keys = tuple(extra_keys)
        # (attribute, axis) whose length must equal n_features_in_
        self.features = features
        self.has_weights = any(a.section == "weights" for a in attrs)


def W(name, kind="array", **kw):
    return Attr(name, kind, section="weights", **kw)


def X(name, kind, **kw):
    return Attr(name, kind, section="xtra", **kw)


_ACT = ("identity", "logistic", "tanh", "relu", "softmax")

_MLP_COMMON = [
    W("coefs_", "array_list", required=True),
    W("intercepts_", "array_list", required=True),
    X("n_layers_", "int", required=True),
    X("n_outputs_", "int", required=True),
    X("out_activation_", "str", required=True, choices=_ACT),
    X("loss_", "opt_float"),
    X("best_loss_", "opt_float"),
    X("n_iter_", "int"),
    # training / optimizer state: accepted (older writers store it), never written
    X("loss_curve_", "float_list", save=False),
    X("t_", "int", save=False),
    X("_no_improvement_count", "int", save=False),
    X("validation_scores_", "opt_float_list", save=False),
    X("best_validation_score_", "opt_float", save=False),
]

_LINEAR_CLF = [
    W("coef_", required=True),
    W("intercept_", required=True),
    X("classes_", "labels", required=True),
]

SPECS = [
    Spec(MLPClassifier, _MLP_COMMON + [X("classes_", "labels", required=True)],
         extra_keys=("label_binarizer_classes_", "label_binarizer_y_type_"), features=("coefs_", 0)),
    Spec(MLPRegressor, _MLP_COMMON, features=("coefs_", 0)),
    Spec(LogisticRegression, _LINEAR_CLF + [X("n_iter_", "array")], features=("coef_", -1)),
    Spec(SGDClassifier, _LINEAR_CLF + [X("n_iter_", "int"), X("t_", "float", save=False)],
         features=("coef_", -1)),
    Spec(LinearSVC, _LINEAR_CLF + [X("n_iter_", "int")], features=("coef_", -1)),
    Spec(LinearRegression, [W("coef_", required=True), W("intercept_", "array_or_num", required=True),
                            X("rank_", "int"), X("singular_", "array")], features=("coef_", -1)),
    Spec(Ridge, [W("coef_", required=True), W("intercept_", "array_or_num", required=True),
                 X("n_iter_", "opt_array")], features=("coef_", -1)),
    Spec(StandardScaler, [W("mean_", "opt_array", required=True), W("var_", "opt_array", required=True),
                          W("scale_", "opt_array", required=True),
                          X("n_samples_seen_", "int_or_array", required=True)], features=("scale_", 0)),
    Spec(MinMaxScaler, [W("scale_", required=True), W("min_", required=True),
                        X("data_min_", "array"), X("data_max_", "array"), X("data_range_", "array"),
                        X("n_samples_seen_", "int")], features=("scale_", 0)),
    Spec(PCA, [W("components_", required=True), W("mean_", required=True),
               W("explained_variance_", required=True),
               X("explained_variance_ratio_", "array"), X("singular_values_", "array"),
               X("noise_variance_", "float"), X("n_samples_", "int"),
               X("n_components_", "int", required=True)], features=("components_", 1)),
    Spec(KMeans, [W("cluster_centers_", required=True), X("_n_features_out", "int"),
                  X("inertia_", "float"), X("n_iter_", "int")], features=("cluster_centers_", 1)),
    Spec(CountVectorizer, [X("vocabulary_", "vocab", required=True),
                           X("fixed_vocabulary_", "bool", required=True)]),
    Spec(TfidfVectorizer, [X("vocabulary_", "vocab", required=True),
                           X("fixed_vocabulary_", "bool", required=True)],
         extra_keys=("transformer",)),
    Spec(TfidfTransformer, [X("_idf_diag", "csr")]),
    Spec(Pipeline, []),
]

BY_NAME = {s.name: s for s in SPECS}
BY_CLASS = {s.cls: s for s in SPECS}

ALLOWED_CLASSES = tuple(sorted(BY_NAME))

# values allowed in a model's "types" map
TYPE_NAMES = {"ndarray", "tuple", "type", "csr_matrix", "list", "dict", "str", "int", "float",
              "bool", "NoneType"}
