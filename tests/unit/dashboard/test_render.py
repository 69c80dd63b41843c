"""The page's HTML built in Python: table rows and the heat map escape what they show."""

from tongban.dashboard import charts
from tongban.dashboard.service import Figure
from tongban.dashboard.tables import Table


def test_table_rows_escape_cells_and_labels() -> None:
    t = Table("x", "t", ("部门<", "件数"), [("<b>&", 12), ("乙", "<阈值")])
    html = str(t.body_html())
    assert html.count("<tr>") == 2
    assert '<td data-label="部门&lt;">&lt;b&gt;&amp;</td><td data-label="件数">12</td>' in html
    assert "&lt;阈值" in html and "<b>" not in html


def test_heatmap_escapes_names_and_marks_suppressed_cells() -> None:
    cities = [("310000", "上<海"), ("320100", "南京")]
    cells = {
        ("310000", "320100"): Figure(25, 0, 0),
        ("320100", "310000"): Figure(None, suppressed=True),
    }
    svg = str(charts.heatmap(cities, cells, title="t"))
    assert "<title>上&lt;海 → 南京：25</title>" in svg
    assert "<title>南京 → 上&lt;海：小于阈值，已隐藏</title>" in svg
    assert f'fill="{charts.SUPPRESSED}"' in svg
    assert "上<海" not in svg
