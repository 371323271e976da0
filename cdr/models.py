"""Analysis specifications ("models as declarations"): read, validate, hash and record them.

A spec is a TOML file (``models/annual.toml`` is the default annual-statistics spec) saying which
years, levels, suppression threshold and rate rules, trend model, factor model and tables an
analysis uses. :func:`load_spec` reads one, fills what it leaves out from the packaged default,
checks every key and value, and returns a :class:`Spec` (a read-only mapping). Outputs record
``spec.to_dict()`` and ``spec.hash`` so a run is reproducible and reviewable.

The default spec ships inside the package (``cdr/_data/models/annual.toml``); nothing here reads
the repository checkout.
"""
from __future__ import annotations

import copy
import difflib
import hashlib
import json
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10 needs the tomli backport
    import tomli as tomllib

from cdr import _validate as check
from cdr.errors import ArgumentTypeError, SpecError

__all__ = ["Spec", "load_spec", "default_spec", "spec_hash", "available_specs", "TABLES", "FIGURE_LEVELS"]

LEVELS = ("la", "footprint", "region", "nation")
FIGURE_LEVELS = LEVELS
#: Table names a spec may ask for (``[tables] produce``), as the annual report (issue 6) defines them.
TABLES = (
    "headline", "deaths_by_age_band", "deaths_by_sex", "deaths_by_category", "deaths_by_deprivation",
    "deaths_by_ethnicity", "modifiable_by_category", "modifiable_by_domain", "modifiable_by_age_band",
    "modifiable_by_deprivation", "factor_model", "trend", "funnel", "comparators",
    # issue 15 (cdr.report._content)
    "deaths_by_expectedness", "joint_agency_response", "deaths_by_place_of_death", "time_to_review",
    "infant_mortality", "learning_themes", "deaths_by_gestation", "deaths_by_birth_weight", "safeguarding", "inquest",
)
OUTCOMES = ("modifiable", "domain_child", "domain_social", "domain_physical", "domain_service")
#: Record columns a factor-model formula may use (contracts.md record schema and derived columns).
FORMULA_VARIABLES = (
    "category", "age_band", "sex", "imd_quintile", "imd_decile", "ethnicity", "year",
    "reporting_year_start", "la_code", "footprint_id", "region_code",
)
_FUNCTIONS = {"C", "I", "Q", "np", "log", "center", "standardize", "scale", "bs", "cr", "Treatment",
              "Sum", "Diff", "Helmert", "Poly", "reference", "levels"}
_PACKAGE_DIR = ("_data", "models")


# --------------------------------------------------------------------------- validators
def _fail(where, value, allowed, extra=""):
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return SpecError(f"{where} = {shown} is not allowed; allowed: {allowed}.{extra}")


def _suggest(value, options):
    if isinstance(value, str):
        lowered = {str(o).lower(): str(o) for o in options}
        close = difflib.get_close_matches(value.lower(), list(lowered), n=1)
        if close:
            return f" Did you mean {lowered[close[0]]!r}?"
    return ""


def _one_of(*options):
    def check(value, where):
        if value not in options:
            raise _fail(where, value, " | ".join(repr(o) for o in options), _suggest(value, options))
        return value
    check.allowed = options
    return check


def _int(lo=None, hi=None):
    def check(value, where):
        if isinstance(value, bool) or not isinstance(value, int) or (lo is not None and value < lo) or \
                (hi is not None and value > hi):
            bounds = f"an integer{'' if lo is None else f' >= {lo}'}{'' if hi is None else f' and <= {hi}'}"
            raise _fail(where, value, bounds)
        return value
    return check


def _number(lo, hi, inclusive=False):
    def check(value, where):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
            lo <= value <= hi if inclusive else lo < value < hi)
        if not ok:
            hint = f" Did you mean {value / 100:g}?" if isinstance(value, (int, float)) and 1 < value < 100 \
                and hi == 1 else ""
            raise _fail(where, value, f"a number in {'[' if inclusive else '('}{lo}, {hi}{']' if inclusive else ')'}",
                        hint)
        return float(value)
    return check


def _text(value, where):
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, value, "a non-empty string")
    return value


def _bool(value, where):
    if not isinstance(value, bool):
        raise _fail(where, value, "true or false")
    return value


def _year_or_latest(value, where):
    if value == "latest":
        return value
    return _int(2008, 2100)(value, where)


def _list_of(check_item, *, min_len=1, unique=True, options=None):
    def check(value, where):
        if not isinstance(value, list) or len(value) < min_len:
            allowed = f"a list of at least {min_len}" + (f" from {list(options)}" if options else "")
            raise _fail(where, value, allowed)
        out = [check_item(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if unique:
            seen = set()
            for i, v in enumerate(out):
                k = json.dumps(v, sort_keys=True)
                if k in seen:
                    raise _fail(f"{where}[{i}]", v, "each entry once (it is repeated)")
                seen.add(k)
        return out
    return check


def _conf_levels(value, where):
    values = value if isinstance(value, list) else [value]
    return [_number(0, 1)(v, f"{where}") for v in values]


def _domains(value, where):
    if value == "all":
        return value
    return _list_of(_one_of(*OUTCOMES[1:]))(value, where)


def _grouping(value, where):
    return _list_of(_one_of(*FORMULA_VARIABLES))(value, where)


def _coverage(value, where):
    if value in ("auto", "all"):
        return value
    return _list_of(_text)(value, where)


def _cluster(value, where):
    return _one_of("none", "la", "footprint", "region")(value, where)


def _formula(value, where):
    _text(value, where)
    if value.count("~") != 1:
        raise _fail(where, value, "one formula 'outcome ~ terms', e.g. "
                    "'modifiable ~ C(category) + C(age_band) + imd_quintile + C(sex)'")
    lhs, rhs = (part.strip() for part in value.split("~"))
    if lhs not in OUTCOMES:
        raise SpecError(f"{where}: the outcome {lhs!r} (left of '~') is not allowed; allowed: "
                        f"{' | '.join(OUTCOMES)}.{_suggest(lhs, OUTCOMES)}")
    if not rhs:
        raise _fail(where, value, "at least one term right of '~' (or '1' for none)")
    stripped = re.sub(r"(['\"]).*?\1", "", rhs)
    names = [m.group(1) for m in re.finditer(r"\b([A-Za-z_][A-Za-z0-9_]*)\b(\s*\()?", stripped)
             if not m.group(2) and m.group(1) not in _FUNCTIONS]
    bad = [n for n in names if n not in FORMULA_VARIABLES]
    if bad:
        raise SpecError(f"{where}: the variable {bad[0]!r} in {value!r} is not a record column a model may "
                        f"use; allowed: {', '.join(FORMULA_VARIABLES)}.{_suggest(bad[0], FORMULA_VARIABLES)}")
    if re.search(r"[^\w\s~+*:()\-\[\].,'\"=/]", rhs):
        raise _fail(where, value, "a patsy formula of record columns with + * : - and C(...)")
    return value


#: Every section and key a spec may hold, with its check. Nested tables are nested dicts.
SCHEMA = {
    "spec": {"name": _text, "version": _int(1), "description": _text},
    "years": {"type": _one_of("reporting", "calendar"), "first": _int(2008, 2100), "last": _year_or_latest,
              "pool": _int(1, 10), "trend_min_years": _int(3, 50)},
    "levels": {"report": _list_of(_one_of(*LEVELS), options=LEVELS), "compare_to": _one_of("region", "nation")},
    "suppression": {"threshold": _int(3, 100), "marker": _text, "zeros": _one_of("show", "suppress"),
                    "secondary": _bool},
    "rates": {"multiplier": _int(1), "conf": _conf_levels, "min_count_crude": _int(0),
              "min_count_standardised": _int(0), "low_reliability_below": _int(0)},
    "trend": {
        "family": _one_of("poisson", "negbin", "auto"),
        "joinpoint": {
            "method": _one_of("glm", "nci"), "selection": _one_of("permutation", "bic", "bic3", "wbic"),
            "n_permutations": _int(99, 100_000), "alpha": _number(0, 1), "max_joinpoints": _int(0, 5),
            "min_obs_end": _int(1, 10), "min_obs_between": _int(1, 10), "seed": _int(0),
        },
    },
    "coverage": {"las": _coverage},
    "factors": {"formula": _formula, "cluster": _cluster, "remedy": _one_of("firth", "none"),
                "conf": _number(0, 1), "domains": _domains, "prevalence_by": _list_of(_grouping),
                "min_events_per_parameter": _int(1, 1000), "min_clusters": _int(1, 1000)},
    "tables": {"produce": _list_of(_one_of(*TABLES), options=TABLES)},
}


def _validate(data, schema, path, source):
    if not isinstance(data, Mapping):
        raise SpecError(f"{_where(path, source)} must be a table (section); got {data!r}.")
    out = {}
    for key, value in data.items():
        where = ".".join(path + [key])
        if key not in schema:
            options = list(schema)
            section = f"[{'.'.join(path)}]" if path else "the top level"
            raise SpecError(f"{_loc(source)}unknown key {where!r} in {section}; allowed: {', '.join(options)}."
                            f"{_suggest(key, options)}")
        rule = schema[key]
        if isinstance(rule, dict):
            out[key] = _validate(value, rule, path + [key], source)
        else:
            out[key] = rule(value, f"{_loc(source)}{where}")
    return out


def _loc(source):
    return f"{source}: " if source else ""


def _where(path, source):
    return f"{_loc(source)}[{'.'.join(path)}]" if path else f"{_loc(source)}the spec"


def _cross_checks(spec, source):
    years = spec["years"]
    if years["last"] != "latest" and years["last"] < years["first"]:
        raise SpecError(f"{_loc(source)}years.last = {years['last']} is before years.first = {years['first']}; "
                        "allowed: a year start >= first, or 'latest'.")
    rates = spec["rates"]
    if rates["min_count_crude"] > rates["min_count_standardised"]:
        raise SpecError(f"{_loc(source)}rates.min_count_crude = {rates['min_count_crude']} exceeds "
                        f"rates.min_count_standardised = {rates['min_count_standardised']}; a crude rate "
                        "never needs more deaths than a standardised one.")
    jp = spec["trend"]["joinpoint"]
    if years["last"] != "latest":
        n_years = years["last"] - years["first"] + 1
        need = 2 * jp["min_obs_end"] + jp["max_joinpoints"] * (jp["min_obs_between"] + 1) - jp["min_obs_between"] \
            if jp["max_joinpoints"] else 2
        if jp["max_joinpoints"] and n_years < need:
            raise SpecError(f"{_loc(source)}trend.joinpoint.max_joinpoints = {jp['max_joinpoints']} needs at least "
                            f"{need} years with min_obs_end = {jp['min_obs_end']} and min_obs_between = "
                            f"{jp['min_obs_between']}; years {years['first']}-{years['last']} give {n_years}. "
                            "Lower max_joinpoints or add years.")


def _merge(base, override):
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class Spec(Mapping):
    """A validated analysis spec: a read-only mapping of sections (``spec["factors"]["formula"]``).

    Made by :func:`load_spec`, which validates; the constructor does not (use it only on data
    that :func:`load_spec` has already checked).

    Parameters
    ----------
    data : mapping
        Sections (``spec``, ``years``, ``suppression``, ...) -> dicts of settings; deep-copied.
    source : str, optional
        Where the data came from, for messages and manifests.

    Attributes
    ----------
    name : str
        ``[spec] name``.
    source : str or None
        Where it was read from (``"package:annual"``, a file path or ``"dict"``); not hashed.
    hash : str
        ``"sha256:<hex>"`` of the canonical JSON of :meth:`to_dict` (see :func:`spec_hash`).

    Examples
    --------
    >>> spec = load_spec("annual")
    >>> spec.name, spec.source, "years" in spec
    ('annual', 'package:annual', True)
    >>> copy_of = Spec(spec.to_dict(), source="dict")
    >>> copy_of == spec, copy_of.hash == spec.hash, len(spec.hash)
    (True, True, 71)
    """

    def __init__(self, data, source=None):
        check.mapping(data, "data", "Spec", example="load_spec('annual').to_dict()")
        if source is not None:
            check.text(source, "source", "Spec", example="'dict'")
        self._data = copy.deepcopy(dict(data))
        self.source = source

    def __getitem__(self, key):
        try:
            return copy.deepcopy(self._data[key])
        except KeyError:
            raise KeyError(f"spec has no section {key!r}; sections: {', '.join(self._data)}") from None

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)

    @property
    def name(self):
        return self._data["spec"]["name"]

    @property
    def hash(self):
        return spec_hash(self)

    def to_dict(self):
        """A deep copy as plain dicts and lists (JSON- and TOML-serialisable), for output manifests."""
        return copy.deepcopy(self._data)

    def __repr__(self):
        return f"Spec(name={self.name!r}, source={self.source!r}, hash={self.hash[:19]}...)"

    def __eq__(self, other):
        return isinstance(other, Spec) and self._data == other._data

    __hash__ = None


def spec_hash(spec):
    """SHA-256 of a spec's canonical JSON (sorted keys, no whitespace): ``"sha256:<64 hex>"``.

    Two specs with the same settings have the same hash, whatever their key order, comments or file.

    Parameters
    ----------
    spec : Spec or mapping
        A :class:`Spec`, or a plain dict of sections (hashed as given, not validated).

    Returns
    -------
    str
        ``"sha256:"`` followed by 64 lower-case hex digits.

    Examples
    --------
    >>> spec_hash(default_spec()) == spec_hash(load_spec("annual"))
    True

    Key order does not matter, and the hash is SHA-256 of the compact sorted-key JSON:

    >>> import hashlib
    >>> spec_hash({"b": 1, "a": [2]}) == spec_hash({"a": [2], "b": 1})
    True
    >>> spec_hash({"a": 1}) == "sha256:" + hashlib.sha256(b'{"a":1}').hexdigest()
    True
    """
    data = spec.to_dict() if isinstance(spec, Spec) else dict(check.mapping(spec, "spec", "spec_hash"))
    try:
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    except (TypeError, ValueError) as exc:  # a value JSON cannot hold (an object), or a circular reference
        raise ArgumentTypeError(f"spec_hash: 'spec' must hold only text, numbers, booleans, lists and dicts; "
                                f"{exc}.") from None
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _package_file(name):
    return resources.files("cdr").joinpath(*_PACKAGE_DIR, f"{name}.toml")


def available_specs():
    """Names of the specs shipped with the package (``load_spec(name)`` finds them).

    Returns
    -------
    list of str
        Sorted file stems of the TOML files in ``cdr/_data/models/``.

    Examples
    --------
    >>> names = available_specs()
    >>> "annual" in names, names == sorted(names)
    (True, True)
    >>> all(load_spec(name).source == f"package:{name}" for name in names)
    True
    """
    folder = resources.files("cdr").joinpath(*_PACKAGE_DIR)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def _read_toml(text, source):
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{source}: not valid TOML ({exc}).") from None


def _raw_default():
    return _read_toml(_package_file("annual").read_text(encoding="utf-8"), "package:annual")


def load_spec(spec="annual"):
    """Read and validate an analysis spec.

    Parameters
    ----------
    spec : str, os.PathLike, dict or Spec, default "annual"
        A packaged spec name (``"annual"``; see :func:`available_specs`), a path to a TOML file, or
        a dict with the same structure. Sections and keys left out are taken from the packaged
        ``annual`` spec; keys not in :data:`SCHEMA` are errors.

    Returns
    -------
    Spec
        The resolved spec: every section and key, validated.

    Raises
    ------
    cdr.errors.SpecError
        Naming the key, the bad value and what is allowed, e.g.
        ``years.type = 'financial' is not allowed; allowed: 'reporting' | 'calendar'.``

    Examples
    --------
    >>> spec = load_spec("annual")
    >>> spec["years"]["type"], spec["suppression"]["threshold"]
    ('reporting', 5)
    >>> load_spec({"years": {"type": "calendar"}})["years"]["type"]
    'calendar'
    >>> load_spec({"years": {"type": "financial"}})
    Traceback (most recent call last):
    ...
    cdr.errors.SpecError: dict: years.type = 'financial' is not allowed; allowed: 'reporting' | 'calendar'.
    """
    if isinstance(spec, Spec):
        return spec
    if isinstance(spec, Mapping):
        raw, source = dict(spec), "dict"
    elif isinstance(spec, (str, Path)):
        path = Path(spec)
        if path.suffix == ".toml" or path.exists() or "/" in str(spec) or "\\" in str(spec):
            if not path.is_file():
                raise SpecError(f"spec file {str(spec)!r} not found; give a path to a TOML file or one of the "
                                f"packaged names: {', '.join(available_specs())}.")
            raw, source = _read_toml(path.read_text(encoding="utf-8"), str(path)), str(path)
        else:
            names = available_specs()
            if str(spec) not in names:
                raise SpecError(f"no packaged spec named {str(spec)!r}; packaged: {', '.join(names)}. "
                                f"Or give a path to a TOML file.{_suggest(str(spec), names)}")
            raw, source = (_read_toml(_package_file(str(spec)).read_text(encoding="utf-8"),
                                      f"package:{spec}"), f"package:{spec}")
    else:
        raise SpecError(f"load_spec: expected a spec name, a path or a dict; got {type(spec).__name__}.")
    checked = _validate(raw, SCHEMA, [], source)  # the user's keys first: errors name their own file
    default = _validate(_raw_default(), SCHEMA, [], "package:annual")
    merged = _merge(default, checked)
    if "spec" not in checked or "name" not in checked.get("spec", {}):
        merged["spec"]["name"] = "custom" if source != "package:annual" else "annual"
    _cross_checks(merged, source)
    return Spec(merged, source=source)


def default_spec():
    """The packaged default annual-statistics spec (``load_spec("annual")``).

    Returns
    -------
    Spec
        The validated ``annual`` spec (``source`` ``"package:annual"``).

    Examples
    --------
    >>> spec = default_spec()
    >>> spec["factors"]["cluster"], spec.name, spec == load_spec("annual")
    ('footprint', 'annual', True)
    """
    return load_spec("annual")
