"""The counter's fee items: every bad row reported beside it at once, the catalogue
searched by code or name without a script, and the diagnosis shown on the visit."""

from __future__ import annotations

import re

from sqlalchemy import select

from tongban.medical.models import FeeItem

from builders import (
    csrf_of,
    make_filing,
    make_hospital_staff,
    make_institution,
    make_insured,
    sign_in,
)


def _visit(client, session):  # type: ignore[no-untyped-def]
    inst = make_institution(session, "310000", level=3)
    staff = make_hospital_staff(session, inst)
    person = make_insured(session, "340100", balance=20_000)
    make_filing(session, person, "310000")
    sign_in(client, staff)
    form = client.get("/medical/counter")
    page = client.post(
        "/medical/counter",
        data={"csrf_token": csrf_of(form.text), "id_number": person.id_number},
    )
    r = client.post(
        "/medical/counter/visits",
        data={
            "csrf_token": csrf_of(page.text),
            "id_number": person.id_number,
            "visit_no": "MZ7",
            "department": "内科",
            "diagnosis": "急性上呼吸道感染",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return r.headers["location"]


def _row_errors(html: str) -> dict[int, str]:
    return {
        int(n): text
        for n, text in re.findall(r'<span class="field-error" id="row-error-(\d+)">([^<]*)<', html)
    }


def test_every_bad_row_is_reported_beside_it_and_nothing_is_saved(client, session):
    url = _visit(client, session)
    page = client.get(url)
    assert "急性上呼吸道感染" in page.text  # the diagnosis, by name
    bad = client.post(
        url + "/items",
        data={
            "csrf_token": csrf_of(page.text),
            "code": ["T0001", "NOPE", "D0011", "ZZZ9"],
            "quantity": ["1", "2", "abc", "1"],
            "price": ["25", "1.00", "15.50", "1.234"],
        },
    )
    assert bad.status_code == 422
    errors = _row_errors(bad.text)
    # Row 1 is fine; rows 2-4 each carry their own reason, all in one answer.
    assert set(errors) == {1, 2, 3}, errors
    assert "NOPE" in errors[1] and "不在就医地医保目录中" in errors[1]
    assert "数量" in errors[2]
    assert "ZZZ9" in errors[3] and "单价" in errors[3]
    assert 'aria-describedby="row-error-2"' in bad.text
    assert "3 行有误" in bad.text
    assert session.scalars(select(FeeItem)).first() is None


def test_a_row_refused_by_the_catalogue_alone_is_marked(client, session):
    url = _visit(client, session)
    page = client.get(url)
    bad = client.post(
        url + "/items",
        data={
            "csrf_token": csrf_of(page.text),
            "code": ["T0001", "NOPE"],
            "quantity": ["1", "1"],
            "price": ["25", "1"],
        },
    )
    assert bad.status_code == 422
    errors = _row_errors(bad.text)
    assert list(errors) == [1] and "NOPE" in errors[1]


def test_catalogue_search_by_name_or_code_without_script(client, session):
    url = _visit(client, session)
    by_name = client.get(url, params={"q": "诊查"})
    assert by_name.status_code == 200
    found = by_name.text.split('id="catalogue-found"', 1)[1].split("</div>", 2)[0]
    assert "T0001" in found and "普通门诊诊查费" in found
    assert "阿莫西林" not in found
    by_code = client.get(url, params={"q": "d0001"}).text
    found = by_code.split('id="catalogue-found"', 1)[1]
    assert "阿莫西林胶囊" in found.split("</table>", 1)[0]
    none = client.get(url, params={"q": "不存在的项目"}).text
    assert "没有与“不存在的项目”相符的项目" in none
    assert '<script src="/static/medical-counter.js"' in none


def test_the_search_shows_reference_prices_and_an_empty_price_takes_it(client, session):
    from sqlalchemy import update

    from tongban.medical.models import CatalogueItem

    url = _visit(client, session)
    found = client.get(url, params={"q": "阿莫西林"})
    assert "参考单价" in found.text and "12.50" in found.text
    # An item the jurisdiction has no price for: the clerk must type one.
    session.execute(
        update(CatalogueItem).where(CatalogueItem.code == "T0001").values(price_fen=None)
    )
    session.commit()
    page = client.get(url)
    refused = client.post(
        url + "/items",
        data={
            "csrf_token": csrf_of(page.text),
            "code": ["D0001", "T0001"],
            "quantity": ["2", "1"],
            "price": ["", ""],
        },
    )
    assert refused.status_code == 422
    assert set(_row_errors(refused.text)) == {1}
    saved = client.post(
        url + "/items",
        data={
            "csrf_token": csrf_of(page.text),
            "code": ["D0001", "T0001"],
            "quantity": ["2", "1"],
            "price": ["", "30"],
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    items = {i.code: i for i in session.scalars(select(FeeItem))}
    assert (items["D0001"].unit_price, items["D0001"].amount) == (1250, 2500)
    assert items["T0001"].unit_price == 3000


def test_a_reload_gives_an_unpriced_item_the_files_price_once(session):
    from sqlalchemy import update

    from tongban.medical import service
    from tongban.medical.models import CatalogueItem

    make_institution(session, "310000", level=3)  # the reference data is loaded
    service.load_reference(session)
    session.execute(update(CatalogueItem).values(price_fen=None))
    session.execute(
        update(CatalogueItem).where(CatalogueItem.code == "T0001").values(price_fen=4200)
    )
    service.load_reference(session)
    prices = {
        (i.jurisdiction_code, i.code): i.price_fen for i in session.scalars(select(CatalogueItem))
    }
    assert prices[("310000", "D0001")] == 1250
    assert prices[("310000", "T0001")] == 4200  # a price held is not overwritten
    assert all(p is not None for p in prices.values())
