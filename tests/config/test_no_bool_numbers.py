"""``true`` is never a number in a config, a push or an MQTT command (pydantic reads it as 1)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from edge_agent import config_sections
from edge_agent.config_sections import Section, admitted_types


def _sections() -> list[type[Section]]:
    return [
        c
        for c in vars(config_sections).values()
        if isinstance(c, type) and issubclass(c, Section) and c is not Section
    ]


def _numeric_fields() -> list[tuple[type[Section], str]]:
    out = []
    for cls in _sections():
        for name, field in cls.model_fields.items():
            kinds = admitted_types(field.annotation)
            if bool not in kinds and kinds & {int, float}:
                out.append((cls, name))
    return out


def test_the_sections_have_numeric_fields_to_check() -> None:
    names = {f"{c.__name__}.{n}" for c, n in _numeric_fields()}
    assert {"GovernorConfig.power_cap_w", "GovernorConfig.slo_latency_ms"} <= names
    assert len(names) > 20


@pytest.mark.parametrize(
    ("cls", "name"), _numeric_fields(), ids=lambda v: getattr(v, "__name__", v)
)
@pytest.mark.parametrize("flag", [True, False])
def test_a_boolean_for_a_number_is_refused_naming_the_field(
    cls: type[BaseModel], name: str, flag: bool
) -> None:
    field = cls.model_fields[name]
    alias = field.alias or name
    with pytest.raises(ValidationError) as err:
        cls.model_validate({alias: flag})
    hits = [e for e in err.value.errors() if e["loc"][:1] == (alias,)]
    assert hits, err.value
    assert "not true/false" in hits[0]["msg"]


def test_a_boolean_field_still_takes_a_boolean() -> None:
    bools = [
        (c, n)
        for c in _sections()
        for n, f in c.model_fields.items()
        if admitted_types(f.annotation) & {bool}
    ]
    assert bools
    for cls, name in bools:
        alias = cls.model_fields[name].alias or name
        errors: list[object] = []
        try:
            cls.model_validate({alias: True})
        except ValidationError as err:  # other fields may be required; never this one's type
            errors = [e for e in err.errors() if e["loc"][:1] == (alias,)]
        assert not errors, (cls.__name__, name, errors)
