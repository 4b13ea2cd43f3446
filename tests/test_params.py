"""One definition of every run parameter: the CLI, the flows, prefect.yaml and README agree."""

from __future__ import annotations

import dataclasses
import inspect
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml

from flows.backfill import backfill
from flows.cli.options import shown_default
from flows.cli.parsers import build_parser
from flows.nightly import nightly
from flows.params import (
    BackfillParams,
    GenerateParams,
    NightlyParams,
    TuneParams,
    last_complete_day,
    option_name,
)
from flows.tune import tune

ROOT = Path(__file__).resolve().parent.parent
FLOW_PARAMS = {
    "nightly": NightlyParams,
    "nightly-dask": NightlyParams,
    "backfill": BackfillParams,
    "tune": TuneParams,
}


def yaml_drift(document: dict) -> list[str]:
    """Return each deployment parameter of prefect.yaml that is unknown or not its default."""
    drift = []
    for deployment in document["deployments"]:
        fields = {f.name: f for f in dataclasses.fields(FLOW_PARAMS[deployment["name"]])}
        for name, value in (deployment.get("parameters") or {}).items():
            if name not in fields:
                drift.append(f"{deployment['name']}.{name}: no such parameter")
            elif value != fields[name].default:
                drift.append(f"{deployment['name']}.{name}: {value} != {fields[name].default}")
    return drift


def readme_defaults(text: str) -> dict[str, str]:
    """Return {option: default} of README's nightly options paragraph (`--top-n 20`, ...)."""
    paragraph = text.split("Nightly options (defaults):", 1)[1].split("\n\n", 1)[0]
    return dict(re.findall(r"`(--[a-z-]+) ([^`]+)`", paragraph))


def test_prefect_yaml_states_no_parameter_other_than_its_default():
    document = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert {d["name"] for d in document["deployments"]} == set(FLOW_PARAMS)
    assert yaml_drift(document) == []


def test_a_drifted_prefect_yaml_parameter_is_caught():
    document = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    document["deployments"][0]["parameters"] = {"window_days": 90, "top_k": 5, "top_n": 20}
    assert yaml_drift(document) == [
        "nightly.window_days: 90 != 180",
        "nightly.top_k: no such parameter",
    ]


def test_readme_documents_every_nightly_default_as_defined():
    documented = readme_defaults((ROOT / "README.md").read_text())
    expected = {
        option_name(f): shown_default(f)
        for f in dataclasses.fields(NightlyParams)
        if shown_default(f) is not None and f.type != "bool"  # a flag has no value to show
    }
    assert documented == expected


def test_a_drifted_readme_default_is_caught():
    text = "Nightly options (defaults): `--top-n 25`, `--window-days 180`.\n\nnext"
    assert readme_defaults(text) == {"--top-n": "25", "--window-days": "180"}


@pytest.mark.parametrize(
    ("flow", "params_cls"), [(nightly, NightlyParams), (backfill, BackfillParams)]
)
def test_each_flow_takes_the_fields_with_their_defaults(flow, params_cls):
    signature = inspect.signature(flow.fn)
    fields = dataclasses.fields(params_cls)
    assert list(signature.parameters) == [f.name for f in fields] + ["database", "replica"]
    for f in fields:
        default = signature.parameters[f.name].default
        assert default == (
            inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
        )
    assert set(flow.parameters.properties) == {f.name for f in fields} | {"database", "replica"}


def test_the_tune_flow_takes_its_fields_with_their_defaults():
    signature = inspect.signature(tune.fn)
    fields = dataclasses.fields(TuneParams)
    assert list(signature.parameters) == [f.name for f in fields] + ["database"]
    assert all(signature.parameters[f.name].default == f.default for f in fields)
    args = build_parser("test").parse_args(["run", "tune"])
    assert {f.name: getattr(args, f.name) for f in fields} == dataclasses.asdict(TuneParams())


def test_cli_defaults_are_the_dataclass_defaults():
    parser = build_parser("test")
    args = parser.parse_args(["run", "nightly"])
    assert {f.name: getattr(args, f.name) for f in dataclasses.fields(NightlyParams)} == (
        dataclasses.asdict(NightlyParams())
    )
    generated = parser.parse_args(["generate"])
    assert {f.name: getattr(generated, f.name) for f in dataclasses.fields(GenerateParams)} == (
        dataclasses.asdict(GenerateParams())
    )


def test_every_option_has_help_with_its_default():
    nightly_help = re.sub(r"\s+", " ", _help("run", "nightly"))
    for f in dataclasses.fields(NightlyParams):
        assert option_name(f) in nightly_help
        if shown_default(f) is not None:
            assert f"(default: {shown_default(f)})" in nightly_help


def _help(*command: str) -> str:
    """Return the --help text of a sub-command (what `rotation … --help` prints)."""
    parser = build_parser("test")
    for name in command:
        parser = parser._subparsers._group_actions[0].choices[name]  # argparse has no getter
    return parser.format_help()


def test_yesterday_is_computed_in_one_place():
    assert last_complete_day(datetime(2026, 3, 1, 0, 30, tzinfo=UTC)) == date(2026, 2, 28)
    assert NightlyParams().resolved(datetime(2026, 3, 1, 0, 30, tzinfo=UTC)).run_date == date(
        2026, 2, 28
    )
    assert NightlyParams(run_date=date(2025, 1, 1)).resolved().run_date == date(2025, 1, 1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"top_n": 0}, "--top-n must be at least 1, not 0"),
        ({"hybrid_alpha": 1.5}, "--hybrid-alpha must be between 0 and 1, not 1.5"),
        ({"window_days": -1}, "--window-days must be at least 0, not -1"),
    ],
)
def test_out_of_bounds_values_are_one_line_naming_the_option(change, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        NightlyParams(**change)


def test_a_backwards_range_is_refused_when_the_parameters_are_made():
    with pytest.raises(ValueError, match="--to 2026-01-01 is before --from 2026-01-05"):
        BackfillParams(date_from=date(2026, 1, 5), date_to=date(2026, 1, 1))
