"""Password policy and sign-in delays: pure rules (no database, no web).

The common-password list is the `passwords` frequency list shipped by zxcvbn (Dropbox's
password strength estimator, on PyPI as `zxcvbn`), whose entries come from leaked
password corpora ranked by frequency; its 10,000 most frequent are checked, together with
a few patterns common among Chinese users that it ranks lower or lacks (COMMON_ZH).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

MIN_LENGTH = 8
MAX_LENGTH = 128
#: How many of zxcvbn's most frequent passwords are refused.
COMMON_TOP = 10_000


#: Passwords widely reported as common among Chinese users (pinyin phrases, number
#: idioms such as 5201314, keyboard walks), added by hand to the zxcvbn list, which ranks
#: some of them below its top 10,000 or lacks them. Lower-case.
COMMON_ZH = frozenset(
    {
        "woaini1314",
        "woaini520",
        "woaini521",
        "5201314520",
        "1314520520",
        "52013141314",
        "iloveyou1314",
        "dearbook",
        "88888888",
        "888888888",
        "8888888888",
        "66666666",
        "666666666",
        "99999999",
        "11223344",
        "12344321",
        "123123123",
        "147258369",
        "789456123",
        "987654321",
        "123654789",
        "110110110",
        "123321123",
        "31415926",
        "qqqqqqqq",
        "xiazhili",
        "asdasdasd",
        "qq123456789",
        "a123456789",
        "aa123456",
        "123456aa",
        "123456abc",
        "abc123456",
        "1234qwer",
        "qwer1234",
        "1q2w3e4r",
        "1q2w3e4r5t",
        "1qaz2wsx",
        "1qaz2wsx3edc",
        "qazwsxedc",
        "zxcvbnm123",
        "wang123456",
        "zhang123456",
        "li123456",
        "liu123456",
        "chen123456",
        "woshishui",
        "wodemima",
        "mima1234",
        "mima123456",
        "nihao123",
        "nihao123456",
        "zhongguo",
        "zhongguo123",
        "beijing2008",
        "shanghai123",
        "tongban123",
        "tongban2026",
        "admin123",
        "admin888",
        "admin12345",
        "root1234",
    }
)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The refused common passwords, lower-case."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    words = {w.lower() for w in FREQUENCY_LISTS["passwords"][:COMMON_TOP]}
    return frozenset(words | COMMON_ZH)


def _classes(password: str) -> int:
    """How many of: Latin letters (either case), digits, other letters (汉字 …), symbols
    and spaces."""
    kinds = set()
    for ch in password:
        if ch.isascii() and ch.isalpha():
            kinds.add("latin")
        elif ch.isdigit():
            kinds.add("digit")
        elif ch.isalpha():
            kinds.add("letter")
        else:
            kinds.add("symbol")
    return len(kinds)


def password_problems(
    password: str, *, username: str | None = None, identifiers: tuple[str | None, ...] = ()
) -> list[str]:
    """What is wrong with `password` (Chinese messages for the password field); empty
    when it is acceptable. `identifiers` are the account's ID number / credit code."""
    problems: list[str] = []
    # The password is kept as typed, but spaces around it and combining sequences do not
    # make up the minimum length: "abc1    " is four characters long.
    normalised = unicodedata.normalize("NFC", password)
    core = normalised.strip()
    if not core:
        return ["密码不能全部是空格"]
    if len(core) < MIN_LENGTH:
        problems.append(f"密码至少 {MIN_LENGTH} 位（首尾空格不计）")
    if len(normalised) > MAX_LENGTH:
        problems.append(f"密码不能超过 {MAX_LENGTH} 位")
    if len(set(core.lower())) == 1:
        problems.append("密码不能由同一个字符重复组成")
    elif _classes(core) < 2:
        problems.append("密码须包含至少两类字符（字母、数字、符号）")
    folded = core.lower()
    if folded in common_passwords():
        problems.append("该密码过于常见，容易被猜中，请换一个")
    if username and folded == username.strip().lower():
        problems.append("密码不能与用户名相同")
    for ident in identifiers:
        if ident and len(ident) >= 6 and ident.strip().lower() in folded:
            problems.append("密码不能包含证件号码")
            break
    return problems


def login_delay(failures: int, *, free: int, base_seconds: float, max_seconds: float) -> float:
    """Seconds to wait after `failures` consecutive failures: none while within `free`,
    then `base_seconds` doubling with each further failure, capped at `max_seconds`."""
    excess = failures - free
    if excess <= 0:
        return 0.0
    return float(min(max_seconds, base_seconds * 2 ** min(excess - 1, 40)))
