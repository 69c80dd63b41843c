"""GB/T 36904 e-licence identifiers (电子证照标识).

Form: ``1.2.156.3005.2.<type>.<issuer credit code>.<serial>.<version>.<check>``

- ``1.2.156.3005.2`` — the fixed OID arc of e-licence identifiers;
- ``<type>`` — the licence type code, 1–40 characters of ``0-9A-Z``;
- ``<issuer credit code>`` — the issuing authority's 18-character unified social credit
  code (GB 32100), validated with its own check character (stdnum.cn.uscc);
- ``<serial>`` — the issuer's serial number, 1–40 characters of ``0-9A-Z``;
- ``<version>`` — two decimal digits ``01``–``99`` (a corrected licence gets the next);
- ``<check>`` — one character of ``0-9A-Z``: ISO 7064 MOD 37,36 (stdnum.iso7064.mod_37_36)
  computed over ``type + credit code + serial + version`` — the four variable fields
  concatenated without the dots, upper-case.

Why these characters: MOD 37,36 is defined over the 36 alphanumerics, so the dots
cannot be part of its input, and the fixed arc ``1.2.156.3005.2`` is the same in every
identifier (including it would change every check character and detect nothing more).
Every character that varies between identifiers is covered, so every single-character
substitution — and, MOD 37,36 being a hybrid system, nearly every transposition of
adjacent characters — changes the check. A dot moved across a boundary is caught by
the structure: the version is always two digits (so serial|version cannot shift) and
the credit code is exactly 18 characters carrying its own GB 32100 check character (a
shift around it leaves a valid credit code only by chance, about 1 in 31).

Parsing accepts surrounding blanks and lower case (people type identifiers); the
canonical form is upper-case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stdnum.cn import uscc
from stdnum.iso7064 import mod_37_36

PREFIX = "1.2.156.3005.2"
_FIELD = re.compile(r"[0-9A-Z]{1,40}")
_VERSION = re.compile(r"[0-9]{2}")
_CHECK = re.compile(r"[0-9A-Z]")


@dataclass(frozen=True, slots=True)
class LicenceIdentifier:
    type_code: str
    issuer_credit_code: str
    serial: str
    version: int
    check: str

    def __str__(self) -> str:
        return ".".join(
            (
                PREFIX,
                self.type_code,
                self.issuer_credit_code,
                self.serial,
                f"{self.version:02d}",
                self.check,
            )
        )


def check_character(type_code: str, issuer_credit_code: str, serial: str, version: int) -> str:
    """The ISO 7064 MOD 37,36 check character of the identifier's variable fields."""
    return mod_37_36.calc_check_digit(f"{type_code}{issuer_credit_code}{serial}{version:02d}")


def _validate_fields(type_code: str, credit: str, serial: str, version: int) -> None:
    if not _FIELD.fullmatch(type_code):
        raise ValueError("证照类型代码须为1至40位数字或大写字母")
    if not (isinstance(credit, str) and len(credit) == 18 and uscc.is_valid(credit)):
        raise ValueError("颁发机构统一社会信用代码无效")
    if not _FIELD.fullmatch(serial):
        raise ValueError("证照流水号须为1至40位数字或大写字母")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= 99:
        raise ValueError("证照版本号须为1至99")


def make_identifier(type_code: str, issuer_credit_code: str, serial: str, version: int = 1) -> str:
    """The identifier of licence `serial` (version `version`) of type `type_code` issued
    by the authority with credit code `issuer_credit_code`; ValueError (Chinese) when a
    field is invalid. Letters are upper-cased."""
    type_code, credit, serial = type_code.upper(), issuer_credit_code.upper(), serial.upper()
    _validate_fields(type_code, credit, serial, version)
    check = check_character(type_code, credit, serial, version)
    return str(LicenceIdentifier(type_code, credit, serial, version, check))


def parse_identifier(value: str) -> LicenceIdentifier:
    """Read an identifier; ValueError with a Chinese message when its form or its check
    character is wrong."""
    if not isinstance(value, str):
        raise ValueError("证照标识须为字符串")
    text = value.strip().upper()
    if not text.startswith(PREFIX + "."):
        raise ValueError(f"证照标识须以 {PREFIX} 开头")
    fields = text[len(PREFIX) + 1 :].split(".")
    if len(fields) != 5:
        raise ValueError("证照标识格式错误：应为 类型.机构代码.流水号.版本号.校验位")
    type_code, credit, serial, version_text, check = fields
    if not _VERSION.fullmatch(version_text) or version_text == "00":
        raise ValueError("证照版本号须为两位数字（01至99）")
    version = int(version_text)
    _validate_fields(type_code, credit, serial, version)
    if not _CHECK.fullmatch(check):
        raise ValueError("证照标识校验位格式错误")
    if check != check_character(type_code, credit, serial, version):
        raise ValueError("证照标识校验位错误")
    return LicenceIdentifier(type_code, credit, serial, version, check)
