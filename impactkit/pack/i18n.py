"""Languages of the policy brief: gettext catalogs and locale formatting (Babel).

Every sentence the brief writes goes through ``Local.gettext`` (``_``); the catalogs live
in ``impactkit/pack/locale/<lang>/LC_MESSAGES/impactkit.po`` (package data). They are
extracted with Babel (``make i18n``: ``pybabel extract`` + ``pybabel update``) and compiled
by Babel at build time, in memory (:func:`translations`), so a fresh clone needs no
compiled ``.mo`` file. English is the source language.

Numbers, money, percentages and dates are formatted by Babel for the locale: ``es`` with
region ``PE`` gives ``S/ 6.019,50`` (the Spanish number symbols, that region's currency
symbol) and ``1 de diciembre de 2026``.
"""

from __future__ import annotations

import datetime as _dt
import functools
import gettext
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, get_currency_symbol
from babel.support import Translations

from impactkit.errors import InputError

DOMAIN = "impactkit"
SOURCE_LANGUAGE = "en"
MISSING = "\u2013"


def N_(message: str) -> str:
    """Marks ``message`` for extraction (Babel's default ``N_`` keyword); returns it unchanged."""
    return message


def locale_dir() -> Path:
    """``impactkit/pack/locale`` (package data, found via :mod:`importlib.resources`)."""
    import importlib.resources

    return Path(str(importlib.resources.files("impactkit.pack").joinpath("locale")))


def catalog_path(lang: str) -> Path:
    return locale_dir() / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def available_languages() -> list[str]:
    """English plus every language with a catalog."""
    folder = locale_dir()
    found = sorted(p.name for p in folder.iterdir() if (p / "LC_MESSAGES" / f"{DOMAIN}.po").is_file()) \
        if folder.is_dir() else []
    return [SOURCE_LANGUAGE] + [lang for lang in found if lang != SOURCE_LANGUAGE]


@functools.lru_cache(maxsize=None)
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalog of ``lang`` (Babel: ``.po`` -> ``.mo`` in memory); English: none."""
    if lang == SOURCE_LANGUAGE:
        return gettext.NullTranslations()
    path = catalog_path(lang)
    if not path.is_file():
        raise InputError(f"[pack] languages: no catalog for {lang!r}; available: {', '.join(available_languages())}")
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=lang, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return True


@dataclass(frozen=True)
class Local:
    """One language of the brief: its translations and its number/date formatting.

    ``lang`` is a catalog language (``"es"``), ``region`` an optional country code
    (``"PE"``): number symbols come from the language, the currency symbol from the
    language in that region (``S/`` for PEN in ``es_PE``).
    """

    lang: str
    region: str | None = None

    def __post_init__(self) -> None:
        try:
            Locale.parse(self.lang)
        except (UnknownLocaleError, ValueError):
            raise InputError(f"[pack] languages: {self.lang!r} is not a known language code") from None

    @property
    def regional(self) -> str:
        if self.region:
            tag = f"{self.lang}_{self.region.upper()}"
            try:
                Locale.parse(tag)
                return tag
            except (UnknownLocaleError, ValueError):
                pass
        return self.lang

    def gettext(self, message: str) -> str:
        return translations(self.lang).gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return translations(self.lang).ngettext(singular, plural, n)

    def number(self, value: Any, digits: int = 0) -> str:
        if _missing(value):
            return MISSING
        x = round(float(value), digits) + 0.0
        text = format_decimal(x, format="#,##0" + ("." + "0" * digits if digits else ""), locale=self.lang)
        return text.replace("-", "\u2212")

    def integer(self, value: Any) -> str:
        return self.number(value, 0)

    def signed(self, value: Any, digits: int = 0) -> str:
        text = self.number(value, digits)
        if text == MISSING or text.startswith("\u2212") or round(float(value), digits) == 0:
            return text
        return "+" + text

    def percent(self, value: Any, digits: int = 0) -> str:
        """A value already in percent units: ``108.2 -> '108 %'`` (locale spacing)."""
        if _missing(value):
            return MISSING
        return self._percent_text(self.number(value, digits))

    def signed_percent(self, value: Any, digits: int = 0) -> str:
        if _missing(value):
            return MISSING
        return self._percent_text(self.signed(value, digits))

    def share(self, value: Any, digits: int = 0) -> str:
        """A proportion as a percentage: ``0.69 -> '69 %'``."""
        return MISSING if _missing(value) else self.percent(100.0 * float(value), digits)

    def _percent_text(self, number: str) -> str:
        from babel.numbers import format_percent

        spaced = format_percent(0.5, locale=self.lang).replace("50", "").startswith(("\u00a0", " "))
        return f"{number}\u00a0%" if spaced else f"{number}%"

    def currency_symbol(self, currency: str) -> str:
        return get_currency_symbol(currency.upper(), locale=self.regional)

    def money(self, value: Any, currency: str | None, digits: int = 0) -> str:
        """``money(6019.5, 'PEN', 2)`` -> ``'S/ 6.019,50'`` (es, PE) / ``'PEN 6,019.50'`` (en)."""
        if _missing(value):
            return MISSING
        code = (currency or "").upper()
        symbol = self.currency_symbol(code) if code else ""
        return f"{symbol}\u00a0{self.number(value, digits)}".strip() if symbol else self.number(value, digits)

    def date(self, iso: str | _dt.date) -> str:
        """``'2026-12-01'`` -> ``'1 de diciembre de 2026'`` (es) / ``'December 1, 2026'`` (en)."""
        day = iso if isinstance(iso, _dt.date) else _dt.date.fromisoformat(str(iso))
        return format_date(day, format="long", locale=self.regional)
