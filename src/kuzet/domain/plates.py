"""Kazakhstan licence plates: formats, regions, normalisation of noisy readings, fuzzy comparison. No I/O.

Formats (black on white, the national flag and "KZ" in a strip on the left):

- since August 2012, individuals: ``123 ABC 02`` — three digits, three Latin letters, the two-digit region code in a
  box at the right, behind a vertical bar;
- since 2012, legal entities: ``123 AB 02`` — three digits, two letters, region code;
- 1993–2012 (still on the road until worn out), individuals: ``A 123 BCD`` — the region letter, three digits, three
  letters; legal entities: ``A 123 BC`` — region letter, three digits, two letters.

Readings come from OCR and from people typing them in, so :func:`normalise` accepts their usual noise: spaces,
dashes, lower case, Cyrillic look-alikes (a Russian keyboard), the "KZ" of the flag strip read along with the number,
the bar before the region code read as ``I``, and characters confused by shape (``O``/``0``, ``I``/``1``, ``B``/``8``,
``S``/``5``, ``Z``/``2``, ``G``/``6``, …) — fixed by where they stand: a position of the format holds either a digit or
a letter, never both. An unknown region code or letter is refused, so random text seldom passes for a plate.

:func:`plate_distance` / :func:`similar` / :func:`search` compare plates for fuzzy hot-list and archive search with
those shape confusions cheaper than other edits (OCR makes them; a witness's memory makes the others).

Motorcycle, trailer, diplomatic and special-service plates are not modelled.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import extract


@dataclass(frozen=True)
class Region:
    code: str
    en: str
    ru: str
    kk: str

    def names(self) -> dict[str, str]:
        return {"en": self.en, "ru": self.ru, "kk": self.kk}


# Region codes of the 2012 format, in the order of the regions' Kazakh names (as the Ministry of Internal Affairs
# assigns them); 17 since Shymkent became a city of republican significance (2018), 18–20 for the regions formed in
# 2022. 13 was South Kazakhstan Region until it was renamed Turkistan (2018).
REGIONS: dict[str, Region] = {r.code: r for r in (
    Region("01", "Astana", "Астана", "Астана"),
    Region("02", "Almaty", "Алматы", "Алматы"),
    Region("03", "Akmola Region", "Акмолинская область", "Ақмола облысы"),
    Region("04", "Aktobe Region", "Актюбинская область", "Ақтөбе облысы"),
    Region("05", "Almaty Region", "Алматинская область", "Алматы облысы"),
    Region("06", "Atyrau Region", "Атырауская область", "Атырау облысы"),
    Region("07", "West Kazakhstan Region", "Западно-Казахстанская область", "Батыс Қазақстан облысы"),
    Region("08", "Zhambyl Region", "Жамбылская область", "Жамбыл облысы"),
    Region("09", "Karaganda Region", "Карагандинская область", "Қарағанды облысы"),
    Region("10", "Kostanay Region", "Костанайская область", "Қостанай облысы"),
    Region("11", "Kyzylorda Region", "Кызылординская область", "Қызылорда облысы"),
    Region("12", "Mangystau Region", "Мангистауская область", "Маңғыстау облысы"),
    Region("13", "Turkistan Region", "Туркестанская область", "Түркістан облысы"),
    Region("14", "Pavlodar Region", "Павлодарская область", "Павлодар облысы"),
    Region("15", "North Kazakhstan Region", "Северо-Казахстанская область", "Солтүстік Қазақстан облысы"),
    Region("16", "East Kazakhstan Region", "Восточно-Казахстанская область", "Шығыс Қазақстан облысы"),
    Region("17", "Shymkent", "Шымкент", "Шымкент"),
    Region("18", "Abai Region", "Абайская область", "Абай облысы"),
    Region("19", "Zhetisu Region", "Жетысуская область", "Жетісу облысы"),
    Region("20", "Ulytau Region", "Улытауская область", "Ұлытау облысы"),
)}

# Region letters of the 1993 format and the region codes of today that cover their territory. Letters of regions
# merged in 1997 (Kokshetau, Turgay, Taldykorgan, Zhezkazgan, Semipalatinsk) map to their successors; a letter whose
# territory is split between two of today's regions has no single region code.
OLD_REGION_LETTERS: dict[str, tuple[str, ...]] = {
    "Z": ("01",), "A": ("02",), "C": ("03",), "O": ("03", "15"), "W": ("03", "10"), "D": ("04",), "B": ("05",),
    "V": ("05",), "E": ("06",), "L": ("07",), "H": ("08",), "K": ("09",), "M": ("09",), "P": ("10",), "N": ("11",),
    "R": ("12",), "X": ("13",), "S": ("14",), "T": ("15",), "F": ("16",), "U": ("16",),
}


@dataclass(frozen=True)
class PlateFormat:
    name: str
    pattern: str  # D digit, L letter, R region-code digit, O old region letter
    example: str

    @property
    def has_region_box(self) -> bool:
        return self.pattern.endswith("RR")


INDIVIDUAL = PlateFormat("individual", "DDDLLLRR", "123ABC02")
LEGAL_ENTITY = PlateFormat("legal_entity", "DDDLLRR", "123AB02")
INDIVIDUAL_1993 = PlateFormat("individual_1993", "ODDDLLL", "A123BCD")
LEGAL_ENTITY_1993 = PlateFormat("legal_entity_1993", "ODDDLL", "A123BC")
FORMATS = (INDIVIDUAL, LEGAL_ENTITY, INDIVIDUAL_1993, LEGAL_ENTITY_1993)  # preference on a tie

# Cyrillic letters that look like Latin ones (Russian and Kazakh keyboards), mapped to those.
LOOKALIKES = str.maketrans({
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T", "У": "Y",
    "Х": "X", "Ү": "Y", "І": "I", "Қ": "K", "Ө": "O", "Ң": "H", "Ё": "E", "З": "3",
})
# Shape confusions, fixed by position: a letter where a digit must stand, a digit where a letter must stand.
TO_DIGIT = {"O": "0", "D": "0", "Q": "0", "I": "1", "L": "1", "Z": "2", "S": "5", "G": "6", "B": "8"}
TO_LETTER = {"0": "O", "1": "I", "2": "Z", "5": "S", "6": "G", "8": "B"}
# Groups of characters OCR confuses; comparing plates, a swap inside a group is cheap.
CONFUSION_GROUPS = ("O0DQ", "I1L", "Z2", "S5", "G6", "B8")
_CANON = str.maketrans({c: g[0] for g in CONFUSION_GROUPS for c in g})
MAX_CORRECTIONS = 3  # more shape fixes than this and the text is more likely not a plate at all
CONFUSION_COST = 0.25  # the cost of a shape confusion in plate_distance, against 1 for any other edit
_BAR = "I1L|"  # how OCR reads the vertical bar before the region box


@dataclass(frozen=True)
class PlateNumber:
    plate: str  # canonical, e.g. "123ABC02"
    format: str  # PlateFormat.name
    region: str | None  # two-digit code, e.g. "02"; None for a 1993 letter split between today's regions
    region_names: dict[str, str] = field(default_factory=dict, compare=False)  # en / ru / kk
    corrections: int = field(default=0, compare=False)  # characters changed or dropped to fit the format

    @property
    def display(self) -> str:
        """As printed on the plate: "123 ABC 02", "A 123 BCD"."""
        p = self.plate
        if self.format in (INDIVIDUAL.name, LEGAL_ENTITY.name):
            return f"{p[:3]} {p[3:-2]} {p[-2:]}"
        return f"{p[0]} {p[1:4]} {p[4:]}"


def clean(text: str) -> str:
    """Upper-case Latin letters and digits only; Cyrillic look-alikes become their Latin twins."""
    return "".join(c for c in text.upper().translate(LOOKALIKES) if c.isascii() and c.isalnum())


def _fit(text: str, fmt: PlateFormat) -> tuple[str, int] | None:
    """``text`` forced into ``fmt`` by fixing shape confusions, with the number of fixes; None if it cannot fit."""
    if len(text) != len(fmt.pattern):
        return None
    out, fixes = [], 0
    for char, kind in zip(text, fmt.pattern, strict=True):
        if kind in "DR":
            if not char.isdigit():
                if char not in TO_DIGIT:
                    return None
                char, fixes = TO_DIGIT[char], fixes + 1
        elif char.isdigit():
            if char not in TO_LETTER:
                return None
            char, fixes = TO_LETTER[char], fixes + 1
        out.append(char)
    return "".join(out), fixes


def _region(plate: str, fmt: PlateFormat) -> tuple[str | None, dict[str, str]] | None:
    if fmt.has_region_box:
        region = REGIONS.get(plate[-2:])
        return (region.code, region.names()) if region else None
    codes = OLD_REGION_LETTERS.get(plate[0])
    if not codes:
        return None
    regions = [REGIONS[c] for c in codes]
    names = {lang: " / ".join(r.names()[lang] for r in regions) for lang in ("en", "ru", "kk")}
    return (codes[0] if len(codes) == 1 else None), names


def _variants(text: str) -> Iterable[tuple[str, int]]:
    """The text and what it may be without the flag strip's "KZ" (either end) — each with the characters dropped."""
    yield text, 0
    for kz in ("KZ", "K2"):
        if text.startswith(kz):
            yield text[2:], 0
        if text.endswith(kz):
            yield text[:-2], 0


def normalise(text: str) -> PlateNumber | None:
    """The Kazakhstan plate in an OCR reading or typed text, or None if it is not one (see the module's notes)."""
    cleaned = clean(text)
    if not 6 <= len(cleaned) <= 11:
        return None
    best: PlateNumber | None = None
    for variant, dropped in _variants(cleaned):
        for fmt in FORMATS:
            tries = [(variant, dropped)]
            if fmt.has_region_box and len(variant) == len(fmt.pattern) + 1 and variant[-3] in _BAR:
                tries.append((variant[:-3] + variant[-2:], dropped + 1))  # the bar before the region box
            for candidate, cost in tries:
                fitted = _fit(candidate, fmt)
                if fitted is None:
                    continue
                plate, fixes = fitted
                region = _region(plate, fmt)
                if region is None or fixes + cost > MAX_CORRECTIONS:
                    continue
                found = PlateNumber(plate, fmt.name, region[0], region[1], fixes + cost)
                if best is None or found.corrections < best.corrections:
                    best = found
    return best


def canonical(text: str) -> str:
    """The text with every shape-confusion group folded to one character: equal canonical forms look alike."""
    return clean(text).translate(_CANON)


def plate_distance(a: str, b: str) -> float:
    """Edits from one plate to another, a shape confusion (``8`` for ``B``) costing :data:`CONFUSION_COST`.

    The alignment is the cheapest one between the canonical forms (rapidfuzz); inside it, positions that agree only
    after folding the confusion groups add the small cost.
    """
    ra, rb = clean(a), clean(b)
    ca, cb = ra.translate(_CANON), rb.translate(_CANON)
    cost = 0.0
    for tag, i1, i2, j1, j2 in Levenshtein.opcodes(ca, cb):
        if tag == "equal":
            cost += CONFUSION_COST * sum(x != y for x, y in zip(ra[i1:i2], rb[j1:j2], strict=True))
        else:
            cost += max(i2 - i1, j2 - j1)
    return cost


def similar(query: str, plate: str, max_edits: float = 1) -> bool:
    """Whether ``plate`` is within ``max_edits`` of ``query`` (shape confusions counting little)."""
    return plate_distance(query, plate) <= max_edits


def search(query: str, plates: Iterable[str], max_edits: float = 1, limit: int = 50) -> list[tuple[str, float]]:
    """The plates within ``max_edits`` of ``query``, closest first: a C-speed pre-filter on canonical forms, then
    :func:`plate_distance` on the few left."""
    items = list(plates)
    if not items:
        return []
    cutoff = int(max_edits)
    hits = extract(canonical(query), [canonical(p) for p in items], scorer=Levenshtein.distance,
                   score_cutoff=cutoff, limit=None)
    scored = [(items[index], plate_distance(query, items[index])) for _, _, index in hits]
    scored = [(p, d) for p, d in scored if d <= max_edits]
    scored.sort(key=lambda item: (item[1], item[0]))
    return scored[:limit]


def matches_prefix(prefix: str, plate: str) -> bool:
    """Whether ``plate`` starts with what an operator typed so far (noise and shape confusions forgiven)."""
    return canonical(plate).startswith(canonical(prefix))
