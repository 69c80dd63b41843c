"""A matter's guide (办事指南) beyond the standard definition: fees, where to go, office
hours, hotline and the steps, for the place the reader chooses.

The standard catalogue (data/matters.json) does not carry these. data/guides.json holds
what is known for a matter; where it is silent the guide says the general rule and marks
it as such (默认), so a reader is never told as fact what no authority published.
Pure Python: no database, no web framework.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

#: The general rules used where a matter's own guide is silent.
DEFAULT_FEE = "不收费"
DEFAULT_HOURS = "工作日 上午 9:00–12:00，下午 13:30–17:00（法定节假日除外）"
DEFAULT_HOTLINE = "12345 政务服务便民热线"
DEFAULT_NOTE = "（通用规定，以办理地公布为准）"

_STEP_ONLINE = (
    "在线提交：登录后选择办理城市，填写申请表，上传材料或授权调用电子证照",
    "受理：有管辖权的部门审查材料，齐全的予以受理；需要补正的一次性告知",
    "审核与决定：在承诺时限内作出决定，进度可在“我的办件”查看",
    "办结送达：电子结果在“我的办件”下载，证照类结果同时进入“我的证照”",
)
_STEP_PROXY = (
    "窗口递交：携带身份证件和材料到就近政务服务中心“跨省通办”窗口",
    "代收转递：窗口核验后将材料转至有管辖权的部门",
    "审核与决定：有管辖权的部门在承诺时限内办理，进度可在“我的办件”查看",
    "办结送达：结果邮寄或在窗口领取，电子结果同时可在线下载",
)


@dataclass(frozen=True)
class Fact:
    """One line of the guide: its text, and whether it is the general rule (默认)."""

    text: str
    default: bool


@dataclass(frozen=True)
class Guide:
    fee: Fact
    hours: Fact
    hotline: Fact
    where: Fact
    steps: tuple[str, ...]
    time_limit_days: int


@cache
def _data() -> dict[str, Any]:
    raw = resources.files("tongban.catalog").joinpath("data/guides.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(raw)
    return data


def popular_codes() -> list[str]:
    """The matters the home page offers first (常办事项), in order."""
    return [str(c) for c in _data().get("popular", [])]


def build(
    code: str,
    authority_type: str,
    modes: list[str],
    time_limit_days: int,
    office: str | None = None,
) -> Guide:
    """The guide of matter `code`; `office` names the competent authority of the city the
    reader chose, when they chose one."""
    known: dict[str, Any] = _data().get("matters", {}).get(code, {})

    def fact(key: str, default: str) -> Fact:
        value = known.get(key)
        return Fact(str(value), False) if value else Fact(default, True)

    sector_hotline = _data().get("hotlines", {}).get(authority_type)
    if office:
        where = Fact(f"{office}（可在当地政务服务中心“跨省通办”窗口递交）", False)
    else:
        where = Fact(
            "有管辖权的部门或就近政务服务中心“跨省通办”窗口；选择办理城市后显示具体部门", True
        )
    if known.get("steps"):
        steps = tuple(str(s) for s in known["steps"])
    elif "online" in modes:
        steps = _STEP_ONLINE
    else:
        steps = _STEP_PROXY
    return Guide(
        fee=fact("fee", DEFAULT_FEE),
        hours=fact("hours", DEFAULT_HOURS),
        hotline=fact("hotline", DEFAULT_HOTLINE)
        if known.get("hotline") or sector_hotline is None
        else Fact(sector_hotline, False),
        where=where,
        steps=steps,
        time_limit_days=time_limit_days,
    )
