"""The federation's name is configuration: nothing on the pages names the delta when a
deployment calls itself something else."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tongban.contexts import build_node
from tongban.web.app import create_app


def test_pages_take_the_federation_name_from_settings(settings, factory) -> None:  # type: ignore[no-untyped-def]
    renamed = settings.model_copy(update={"federation_name": "京津冀"})
    with TestClient(create_app(build_node(renamed, factory))) as client:
        home = client.get("/")
        assert home.status_code == 200
        assert "京津冀政务服务" in home.text and "长三角" not in home.text
        assert client.get("/openapi.json").json()["info"]["description"].startswith("京津冀")
