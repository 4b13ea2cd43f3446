"""The database URL: parsed by libpq's parser, its password masked wherever it might show.

Every character that means something in a URL is tried in a password, raw and
percent-encoded: an ambiguous URL is refused with one redacted line that says to
percent-encode; an unambiguous one is accepted; the password never shows either way.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from flows.cli import main
from flows.storage.database import DatabaseUrlError, parse_database, redact
from flows.storage.secrets import resolve_database

SECRET = "SECRETpw"
SPECIALS = ["#", "?", "@", "/", ":", "%", "&", " "]
AMBIGUOUS = {"#", "?", "@", "/", "%", " "}


def url_with(password: str, encode: bool) -> str:
    """Return a PostgreSQL URL whose password is `password` (percent-encoded if asked)."""
    return f"postgresql://rotation:{quote(password, safe='') if encode else password}@db:5432/x"


@pytest.mark.parametrize("char", SPECIALS)
def test_a_raw_reserved_character_is_refused_redacted_and_said_how_to_fix(char):
    password = f"Zq9x{char}{SECRET}"
    if char not in AMBIGUOUS:
        db = parse_database(url_with(password, encode=False))
        assert SECRET not in db.display and db.display.startswith("postgresql://rotation:***@")
        return
    with pytest.raises(DatabaseUrlError) as caught:
        parse_database(url_with(password, encode=False))
    message = str(caught.value)
    assert SECRET not in message and "\n" not in message
    assert "'postgresql://rotation:***@db:5432/x'" in message and "percent-encode" in message


@pytest.mark.parametrize("char", SPECIALS)
def test_a_percent_encoded_password_is_accepted_and_masked_everywhere(char):
    password = f"Zq9x{char}{SECRET}"
    url = url_with(password, encode=True)
    db = parse_database(url)
    assert db.url == url and db.has_password
    assert db.display == "postgresql://rotation:***@db:5432/x"
    assert SECRET not in repr(db) and SECRET not in str(db)
    for leaked in (password, quote(password, safe=""), url, f"error: {password} failed"):
        assert SECRET not in redact(leaked)


def test_a_password_parameter_is_masked_too():
    db = parse_database(f"postgresql://rotation@db/x?password=a%26{SECRET}&sslmode=disable")
    assert db.display == "postgresql://rotation@db/x?password=***&sslmode=disable"
    assert SECRET not in redact(f"server said: password a&{SECRET} rejected")


@pytest.mark.parametrize(
    "url",
    [f"postgresql://rotation:{SECRET}@db/x?badkey=1", f"postgresql://rotation:{SECRET}@[::1/x"],
    ids=["unknown-parameter", "broken-ipv6-host"],
)
def test_a_url_that_libpq_refuses_is_one_redacted_line(url):
    with pytest.raises(DatabaseUrlError) as caught:
        parse_database(url)
    message = str(caught.value)
    assert SECRET not in message and "is not valid" in message and "\n" not in message


@pytest.mark.parametrize("char", ["#", "?"])
def test_the_cli_prints_one_line_without_the_password(capsys, char):
    code = main(["-q", "run", "nightly", "--database", url_with(f"Zq9x{char}{SECRET}", False)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and SECRET not in err and "percent-encode" in lines[0]


def test_a_flow_parameter_with_a_password_is_refused():
    with pytest.raises(DatabaseUrlError, match="Prefect stores") as caught:
        resolve_database(f"postgresql://rotation:{SECRET}@db/x")
    assert SECRET not in str(caught.value)
    assert not resolve_database("postgresql://rotation@db/x").has_password
