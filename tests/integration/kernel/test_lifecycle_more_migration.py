"""Migration 0018 moves the work-order and licence counters onto the kernel's one
numbering table without losing a number, and gives them back on downgrade."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from tongban.migrate import downgrade, upgrade

ISSUER = "1134010079459337XT"


def test_counters_move_to_number_counter_and_back(tmp_path):
    url = f"sqlite:///{tmp_path / 'm0018.db'}"
    upgrade(url, "0017")
    engine = create_engine(url)
    with engine.begin() as c:
        c.execute(text("INSERT INTO ticket_counter VALUES ('320500', '20261128', 7)"))
        c.execute(text("INSERT INTO ticket_counter VALUES ('DB320000', '20261128', 2)"))
        c.execute(text(f"INSERT INTO licence_serial VALUES ('111', '{ISSUER}', 42)"))
    upgrade(url, "0018")
    with engine.connect() as c:
        rows = set(c.execute(text("SELECT scope, period, last FROM number_counter")))
    assert {
        ("ticket:320500", "20261128", 7),
        ("ticket:DB320000", "20261128", 2),
        (f"licence:111:{ISSUER}", "", 42),
    } <= rows
    downgrade(url, "0017")
    with engine.connect() as c:
        tickets = set(c.execute(text("SELECT scope, day, last FROM ticket_counter")))
        serials = set(c.execute(text("SELECT type_code, issuer_code, last FROM licence_serial")))
        left = c.execute(
            text("SELECT COUNT(*) FROM number_counter WHERE scope NOT LIKE 'case:%'")
        ).scalar_one()
    assert tickets == {("320500", "20261128", 7), ("DB320000", "20261128", 2)}
    assert serials == {("111", ISSUER, 42)}
    assert left == 0
    engine.dispose()
