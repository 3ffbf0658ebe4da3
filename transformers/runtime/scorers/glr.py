"""GeneralizedLinearRegressionModel: ``prediction = project(unlink(eta))`` with the linear
predictor ``eta = dot(features, coefficients) + intercept + offset``, as Spark's
``GeneralizedLinearRegressionModel.predict`` (``familyAndLink.fitted(predictLink(...))``).

Family and link are chosen as Spark's ``FamilyAndLink(params)`` does: ``tweedie`` with
variancePower 0 / 1 / 2 is the gaussian / poisson / gamma family, otherwise a Tweedie
family whose default link is the power link ``1 - variancePower``; an explicitly set
``linkPower`` 0 / 1 / -1 / 0.5 is the log / identity / inverse / sqrt link, any other a
power link ``eta ** (1 / linkPower)``. For the other families the ``link`` param if it
was set, else the family's default link (gaussian identity, binomial logit, poisson
log, gamma inverse).

``project`` trims the mean as Spark does: gaussian maps -inf/+inf to -/+Double.MaxValue;
binomial clamps to ``[1e-16, 1 - 1e-16]``; poisson, gamma and tweedie raise anything
below 1e-16 to 1e-16 and +inf to Double.MaxValue. NaN passes through.

The offset column is cast to double; a null offset gives null outputs (Spark's UDF on a
primitive double). With ``linkPredictionCol`` set, the prediction is computed from the
link prediction, as Spark does. Java's ``Math.exp`` / ``Math.pow`` and commons-math's
``erf`` (probit) are replaced by Python's ``math`` functions with Java's IEEE special
cases (overflow to infinity, NaN for a negative base to a fractional power, 1/0 = inf).
"""
from __future__ import annotations

import math
import sys

import numpy as np

from ..batch import apply_each, with_nulls
from ..stage import scorer
from ._util import java_div, java_exp
from .linear_models import LinearPredictor
from palette.errors import ArtifactError, UnsupportedStageError

EPSILON = 1e-16
MAX = sys.float_info.max
SQRT2 = math.sqrt(2.0)


def _odd_integer(b: float) -> bool:
    return math.isfinite(b) and b.is_integer() and abs(b) < 2.0 ** 53 and int(b) % 2 == 1


def jpow(a: float, b: float) -> float:
    """Java's ``Math.pow`` special cases around Python's ``math.pow``."""
    if math.isnan(b):
        return math.nan
    if b == 0.0:
        return 1.0
    if math.isnan(a):
        return math.nan
    if abs(a) == 1.0 and math.isinf(b):
        return math.nan
    try:
        return math.pow(a, b)
    except ValueError:                      # 0 ** negative, or negative ** fractional
        if a == 0.0:
            neg = math.copysign(1.0, a) < 0 and _odd_integer(b)
            return -math.inf if neg else math.inf
        return math.nan
    except OverflowError:
        return -math.inf if (a < 0 and _odd_integer(b)) else math.inf


# -- links: unlink(eta) --------------------------------------------------------------
def _identity(eta):
    return eta


def _log(eta):
    return java_exp(eta)


def _inverse(eta):
    return java_div(1.0, eta)


def _sqrt(eta):
    return eta * eta


def _logit(eta):
    return 1.0 / (1.0 + java_exp(-1.0 * eta))


def _probit(eta):
    # breeze Gaussian(0, 1).cdf: .5 * (1 + erf((x - mu) / sqrt2 / sigma))
    return 0.5 * (1.0 + math.erf((eta - 0.0) / SQRT2 / 1.0))


def _cloglog(eta):
    return 1.0 - java_exp(-1.0 * java_exp(eta))


def _power(link_power: float):
    def unlink(eta):
        if link_power == 0.0:
            return java_exp(eta)
        return jpow(eta, java_div(1.0, link_power))
    return unlink


LINKS = {"identity": _identity, "log": _log, "inverse": _inverse, "sqrt": _sqrt,
         "logit": _logit, "probit": _probit, "cloglog": _cloglog}
DEFAULT_LINK = {"gaussian": "identity", "binomial": "logit", "poisson": "log", "gamma": "inverse"}
PAIRS = {"gaussian": {"identity", "log", "inverse"}, "binomial": {"logit", "probit", "cloglog"},
         "poisson": {"log", "identity", "sqrt"}, "gamma": {"inverse", "identity", "log"}}


# -- families: project(mu) -----------------------------------------------------------
def _project_gaussian(mu):
    if mu == -math.inf:
        return -MAX
    if mu == math.inf:
        return MAX
    return mu


def _project_binomial(mu):
    if mu < EPSILON:
        return EPSILON
    if mu > 1.0 - EPSILON:
        return 1.0 - EPSILON
    return mu


def _project_tweedie(mu):
    if mu < EPSILON:
        return EPSILON
    if math.isinf(mu):
        return MAX
    return mu


def family_and_link(params: dict, explicit: dict):
    """(family name, project, link description, unlink) as Spark's ``FamilyAndLink``."""
    family = str(params.get("family", "gaussian")).lower()
    if family == "tweedie":
        p = float(params.get("variancePower", 0.0))
        fam = {0.0: "gaussian", 1.0: "poisson", 2.0: "gamma"}.get(p, "tweedie")
        if "linkPower" in explicit:
            lp = float(explicit["linkPower"])
            name = {0.0: "log", 1.0: "identity", -1.0: "inverse", 0.5: "sqrt"}.get(lp)
            link_name, unlink = (name, LINKS[name]) if name else (f"power({lp})", _power(lp))
        elif fam == "tweedie":
            lp = 1.0 - p
            link_name, unlink = f"power({lp})", _power(lp)
        else:
            link_name = DEFAULT_LINK[fam]
            unlink = LINKS[link_name]
    else:
        if family not in PAIRS:
            raise ArtifactError(f"GeneralizedLinearRegression: unsupported family {family!r}")
        fam = family
        if "link" in explicit:
            link_name = str(explicit["link"]).lower()
            if link_name not in PAIRS[fam]:
                raise UnsupportedStageError(f"Generalized Linear Regression with {family} family does not support "
                                 f"{link_name} link function.")
        else:
            link_name = DEFAULT_LINK[fam]
        unlink = LINKS[link_name]
    project = {"gaussian": _project_gaussian, "binomial": _project_binomial}.get(fam, _project_tweedie)
    return fam, project, link_name, unlink


@scorer("org.apache.spark.ml.regression.GeneralizedLinearRegressionModel")
class GeneralizedLinearRegressionScorer(LinearPredictor):
    supports = ('families gaussian, binomial, poisson, gamma, tweedie (variancePower, linkPower); '
                'links identity, log, inverse, logit, probit, cloglog, sqrt, power; offsetCol, linkPredictionCol')
    limitations = ("exp/pow/erf from Python's math, not Java's: predictions within ~1 ulp, probit within "
                   "~3e-14 relative in its lower tail; summation order may differ from Spark's BLAS")

    def __init__(self, path, metadata, context=None):
        super().__init__(path, metadata, context)
        explicit = metadata.get("paramMap", {})
        families = ("gaussian", "binomial", "poisson", "gamma", "tweedie")
        if str(self.param("family", "gaussian")).lower() not in families:
            self.unsupported(f"family={self.param('family')!r}", f"family in {', '.join(families)}")
        self.family, self.project, self.link, self.unlink = family_and_link(self.params, explicit)
        self.link_col = self.param("linkPredictionCol") or None
        off = explicit.get("offsetCol")
        self.offset_col = off if off else None

    def fitted(self, eta: float) -> float:
        return self.project(self.unlink(eta))

    def link_prediction(self, row: dict):
        if self.offset_col is None:
            offset = 0.0
        else:
            o = row[self.offset_col]
            if o is None:                   # Spark's UDF on a primitive double: null in, null out
                return None
            offset = float(o)
        return self.margin(row) + offset

    def score_row(self, row: dict) -> dict:
        eta = self.link_prediction(row)
        out = {}
        if self.link_col:
            out[self.link_col] = eta
        if self.pred_col:
            out[self.pred_col] = None if eta is None else self.fitted(eta)
        return out

    def score_columns(self, batch) -> dict | None:
        """A null offset gives null outputs, and its row's features are not read (as in
        the row path); a null features vector elsewhere raises the row path's error."""
        null = np.zeros(batch.n, dtype=bool)
        offset = 0.0
        if self.offset_col is not None:
            got = batch.nullable_floats(self.offset_col, bools=True)
            if got is None:
                return None
            offset, null = got
        if null.all():
            margins = np.full(batch.n, np.nan)
        else:
            margins = self.margins(batch.where(~null) if null.any() else batch)
            if margins is None:
                return None
            if null.any():
                margins = _spread(margins, null)
        eta = margins + offset
        out = {}
        if self.link_col:
            out[self.link_col] = with_nulls(eta, null)
        if self.pred_col:
            out[self.pred_col] = with_nulls(apply_each(self.fitted, eta), null)
        return out


def _spread(values: np.ndarray, null: np.ndarray) -> np.ndarray:
    """``values`` (of the rows not null) back in place among all rows, NaN at the null ones."""
    full = np.full(null.size, np.nan)
    full[~null] = values
    return full
