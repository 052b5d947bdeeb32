"""Units: cache element formats, token counts ("128K"), byte sizes ("80GiB") and their formatting.

Everything here is exact: widths are integers of bits plus optional per-block scale bytes, and parsed
quantities are Python ints (decimal inputs go through `fractions.Fraction`, never float).
"""

from __future__ import annotations

import re
from fractions import Fraction

from .errors import UsageError
from .records import record

# Largest context and batch mla-mem accepts: far beyond any real deployment, small enough that a typo
# such as 10^18 is caught as a mistake instead of printed as a number.
MAX_CONTEXT = 2**40
MAX_BATCH = 2**24


@record
class DType:
    """A cache element format.

    `bits` per value, plus `scale_bytes` for every `scale_block` values (block-quantised formats).
    Bytes for a row of n values: ceil(n * bits / 8) + ceil(n / scale_block) * scale_bytes.
    """

    name: str
    bits: int
    scale_block: int = 0
    scale_bytes: int = 0
    description: str = ""

    def row_bytes(self, values: int) -> int:
        """Exact bytes of one row of `values` elements in this format."""
        data = -(-values * self.bits // 8)
        if self.scale_block:
            data += -(-values // self.scale_block) * self.scale_bytes
        return data

    @property
    def is_block_quantized(self) -> bool:
        return self.scale_block > 0

    def width_text(self) -> str:
        """'2 B', '0.5 B', or '34 B per 32 values' for block formats."""
        if self.scale_block:
            per_block = self.row_bytes(self.scale_block)
            return f"{per_block} B per {self.scale_block} values"
        width = Fraction(self.bits, 8)
        return f"{width.numerator} B" if width.denominator == 1 else f"{float(width):g} B"


# Sources: IEEE/OCP formats; llama.cpp block layouts from ggml/src/ggml-common.h (block_q8_0 = 32 int8 + fp16
# scale = 34 B; q4_0 18 B; q4_1 20 B; q5_0 22 B; q5_1 24 B; iq4_nl 18 B); NVFP4 = 4-bit values + one fp8
# scale per 16 (TensorRT-LLM: ceil(n/2) + ceil(n/16)); MXFP4 = 4-bit values + one e8m0 scale per 32.
_DTYPES: dict[str, DType] = {
    d.name: d
    for d in (
        DType("fp32", 32, description="IEEE float32"),
        DType("bf16", 16, description="bfloat16"),
        DType("fp16", 16, description="IEEE float16"),
        DType("fp8_e4m3", 8, description="fp8 e4m3, no scales"),
        DType("fp8_e5m2", 8, description="fp8 e5m2, no scales"),
        DType("int8", 8, description="8-bit integer"),
        DType("int4", 4, description="4-bit integer"),
        DType("fp4", 4, description="4-bit float, no scales"),
        DType("q8_0", 8, 32, 2, "llama.cpp q8_0: 34 B per 32 values"),
        DType("q4_0", 4, 32, 2, "llama.cpp q4_0: 18 B per 32 values"),
        DType("q4_1", 4, 32, 4, "llama.cpp q4_1: 20 B per 32 values"),
        DType("q5_0", 5, 32, 2, "llama.cpp q5_0: 22 B per 32 values"),
        DType("q5_1", 5, 32, 4, "llama.cpp q5_1: 24 B per 32 values"),
        DType("iq4_nl", 4, 32, 2, "llama.cpp iq4_nl: 18 B per 32 values"),
        DType("nvfp4", 4, 16, 1, "NVFP4: 4-bit values + one fp8 scale per 16"),
        DType("mxfp4", 4, 32, 1, "MXFP4: 4-bit values + one e8m0 scale per 32"),
    )
}

_ALIASES = {
    "float32": "fp32",
    "f32": "fp32",
    "bfloat16": "bf16",
    "float16": "fp16",
    "f16": "fp16",
    "half": "fp16",
    "fp8": "fp8_e4m3",
    "e4m3": "fp8_e4m3",
    "fp8_e4m3fn": "fp8_e4m3",
    "float8_e4m3fn": "fp8_e4m3",
    "e5m2": "fp8_e5m2",
    "float8_e5m2": "fp8_e5m2",
    "auto": "",  # resolved by the caller to the model dtype
}

# Formats whose layout is decided by a runtime for one kind of cache (e.g. vLLM's packed MLA record);
# runtimes.py gives them meaning, parse_dtype only knows their names.
PACKED_FORMATS = {
    "fp8_ds_mla": "vLLM/SGLang packed MLA record: 512 fp8 + 4 fp32 scales + 64 bf16 rope = 656 B",
    "nvfp4_ds_mla": "vLLM 0.33 packed NVFP4 MLA record (SM100): 352 B",
}


def dtype_names() -> list[str]:
    return sorted(_DTYPES) + sorted(PACKED_FORMATS) + ["<N>bit"]


def parse_dtype(text: str) -> DType:
    """Parse a cache dtype name ('bf16', 'fp8', 'q8_0', '6bit'); packed runtime formats keep their name."""
    raw = str(text).strip()
    key = raw.lower()
    key = _ALIASES.get(key, key)
    if key in _DTYPES:
        return _DTYPES[key]
    if key in PACKED_FORMATS:
        return DType(key, 8, description=PACKED_FORMATS[key])
    match = re.fullmatch(r"(\d{1,2})\s*-?bits?", key)
    if match and 1 <= int(match.group(1)) <= 32:
        bits = int(match.group(1))
        return DType(f"{bits}bit", bits, description=f"{bits}-bit values, no scales")
    raise UsageError(f"unknown cache dtype {raw!r}; expected one of: {', '.join(dtype_names())}")


# ---------------------------------------------------------------------------------------------------------
# Token counts, the way vLLM's --max-model-len reads them (vllm/engine/arg_utils.py human_readable_int):
# lower-case suffixes are decimal (128k = 128,000), upper-case binary (128K = 131,072).

_DECIMAL = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_BINARY = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_tokens(text: str | int, what: str = "context", minimum: int = 1, maximum: int = MAX_CONTEXT) -> int:
    """'131072', '128k' (128,000), '128K' (131,072), '1M' (1,048,576), '1.5k' (1,500) -> int."""
    if isinstance(text, bool):
        raise UsageError(f"{what}: expected a token count such as 131072, 128k or 128K, got {text!r}")
    if isinstance(text, int):
        value = text
    else:
        raw = _ungroup(str(text).strip())
        match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmMgGtT]?)", raw)
        if not match:
            raise UsageError(
                f"{what}: {text!r} is not a token count; expected digits with an optional suffix "
                "k/m/g (x1000) or K/M/G (x1024), e.g. 131072, 128k, 128K, 1M"
            )
        number, suffix = match.groups()
        if suffix in _BINARY:
            if "." in number:
                raise UsageError(
                    f"{what}: decimals are not allowed with binary suffixes ({text!r}); "
                    f"did you mean {number}{suffix.lower()}?"
                )
            value = int(number) * _BINARY[suffix]
        else:
            exact = Fraction(number) * _DECIMAL.get(suffix, 1)
            if exact.denominator != 1:
                raise UsageError(f"{what}: {text!r} is not a whole number of tokens")
            value = int(exact)
    if value < minimum:
        raise UsageError(f"{what}: must be at least {minimum:,}, got {value:,}")
    if value > maximum:
        raise UsageError(f"{what}: {value:,} is beyond the largest supported value {maximum:,}")
    return value


def _ungroup(raw: str) -> str:
    """'131,072' -> '131072' (thousands separators, as mla-mem prints numbers); '131_072' -> '131072'."""
    raw = raw.replace("_", "")
    if "," not in raw:  # the common case, without compiling the pattern
        return raw
    match = re.fullmatch(r"(\d{1,3}(?:,\d{3})+)((?:\.\d+)?[kKmMgGtT]?)", raw)
    return match.group(1).replace(",", "") + match.group(2) if match else raw


def parse_token_list(values: list[str] | tuple[str, ...], what: str = "--context") -> list[int]:
    """Token counts from repeated options and comma lists, read as meant: '131,072' (thousands separators, as
    mla-mem prints) is one number; '32K,128K' and '4096,8192' are lists; '1,000,2,000' is ambiguous and refused."""
    out: list[int] = []
    for value in values:
        text = str(value).strip()
        if "," in text and (
            re.fullmatch(r"\d{1,3}(?:,\d{3})+", text.replace("_", ""))
            or re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?[kKmMgGtT]?", text)
        ):
            out.append(parse_tokens(text, what))
            continue
        parts = [part.strip() for part in text.split(",")]
        if any(not part for part in parts) and len(parts) > 1 and all(p == "" for p in parts):
            raise UsageError(f"{what}: expected at least one token count")
        parts = [part for part in parts if part]
        if len(parts) > 1 and any(re.fullmatch(r"0\d+", part) for part in parts):
            raise UsageError(
                f"{what}: {text!r} is ambiguous (thousands separators or a list?); write one number per option "
                f"(-c 1000 -c 2000), separate a list without thousands separators (1000,2000) or use 1_000"
            )
        out.extend(parse_tokens(part, what) for part in parts)
    if not out:
        raise UsageError(f"{what}: expected at least one token count")
    return list(dict.fromkeys(out))


def parse_percent(text: str | float, what: str) -> Fraction:
    """'5%', '5', '0.5%' -> Fraction percent (0 to 1,000,000)."""
    raw = str(text).strip().rstrip("%").strip()
    try:
        value = Fraction(raw)
    except (ValueError, ZeroDivisionError):
        raise UsageError(f"{what}: expected a percentage such as 5%, got {text!r}") from None
    if value < 0 or value > 10**6:
        raise UsageError(f"{what}: expected a percentage from 0 to 1,000,000, got {text!r}")
    return value


def parse_count(text: str | int, what: str = "batch", maximum: int = MAX_BATCH) -> int:
    """A plain positive integer (batch, GPU count): no suffixes; 1,000 and 1_000 read as 1000."""
    if isinstance(text, bool):
        raise UsageError(f"{what}: expected a positive integer, got {text!r}")
    if isinstance(text, int):
        value = text
    else:
        raw = _ungroup(str(text).strip())
        if not re.fullmatch(r"\d+", raw):
            raise UsageError(f"{what}: expected a positive integer, got {text!r}")
        value = int(raw)
    if value < 1:
        raise UsageError(f"{what}: must be at least 1, got {value:,}")
    if value > maximum:
        raise UsageError(f"{what}: {value:,} is beyond the largest supported value {maximum:,}")
    return value


# ---------------------------------------------------------------------------------------------------------
# Byte sizes

_SIZE_UNITS = {
    "b": 1,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
}


def parse_size(text: str | int, what: str = "size") -> int:
    """'80GiB', '60 GB', '1.5TiB', '4096B' -> int bytes, rounded down to a whole byte. Text needs a unit; an int
    (from YAML or the API) is bytes."""
    if isinstance(text, bool):
        raise UsageError(f"{what}: expected a size such as 80GiB or 60GB, got {text!r}")
    if isinstance(text, int):
        value = text
    else:
        raw = _ungroup(str(text).strip().replace(" ", ""))
        match = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]*)", raw)
        unit = match.group(2).lower() if match else ""
        if not match or unit not in _SIZE_UNITS:
            hint = f"; a bare number is ambiguous: write {text}GiB, {text}GB or {text}B" if match and not unit else ""
            raise UsageError(
                f"{what}: {text!r} is not a size; expected a number with a unit "
                f"B, KiB, MiB, GiB, TiB (binary) or kB, MB, GB, TB (decimal), e.g. 80GiB{hint}"
            )
        value = int(Fraction(match.group(1)) * _SIZE_UNITS.get(unit, 1))
    if value < 0:
        raise UsageError(f"{what}: must not be negative, got {value}")
    if value > 2**60:
        raise UsageError(f"{what}: {value:,} bytes is beyond any real memory")
    return value


_BINARY_LABELS = [("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)]
_SI_LABELS = [("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)]


def format_bytes(value: int | Fraction, units: str = "binary", digits: int = 2) -> str:
    """Human size: '8.58 GiB' (binary, default) or '9.21 GB' (units='si'); below 1 KiB/kB exact bytes."""
    labels = _SI_LABELS if units == "si" else _BINARY_LABELS
    magnitude = Fraction(value) if value >= 0 else -Fraction(value)
    for label, size in labels:
        if magnitude >= size:
            return f"{float(value) / size:,.{digits}f} {label}"
    return f"{format_number(value)} B"


def format_number(value: int | Fraction) -> str:
    """Exact with thousands separators: 70,272 or 5,511.4375 (finite decimal) or '13/3' fallback."""
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return f"{value.numerator:,}"
        text = exact_decimal(value)
        if text is None:
            return f"{float(value):,.4f}"
        whole, _, frac = text.partition(".")
        return f"{int(whole):,}.{frac}"
    return f"{value:,}"


def exact_decimal(value: Fraction) -> str | None:
    """The exact decimal expansion of a fraction whose denominator has only factors 2 and 5, else None."""
    den = value.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den != 1:
        return None
    places = max(twos, fives)
    scaled = value * 10**places
    sign = "-" if scaled < 0 else ""
    digits = str(abs(int(scaled))).rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}" if places else f"{sign}{digits}"


def json_number(value: int | Fraction) -> int | float:
    """JSON value of an exact quantity: an int when whole, else the float (exact for dyadic fractions)."""
    if isinstance(value, Fraction):
        return value.numerator if value.denominator == 1 else float(value)
    return value


def format_tokens(value: int) -> str:
    """131072 -> '128K' when exactly a binary multiple, 128000 -> '128k', else '100,000'."""
    for suffix, size in (("M", 2**20), ("K", 2**10)):
        if value >= size and value % size == 0:
            return f"{value // size}{suffix}"
    for suffix, size in (("m", 10**6), ("k", 10**3)):
        if value >= size and value % size == 0:
            return f"{value // size}{suffix}"
    return f"{value:,}"


def parse_params(text: str | int, what: str) -> int:
    """Published parameter counts: 671B, 1T, 37B, 2.4B, or a plain integer."""
    if isinstance(text, bool):
        raise UsageError(f"{what}: expected a parameter count such as 671B, got {text!r}")
    if isinstance(text, int):
        if text < 1:
            raise UsageError(f"{what}: must be positive, got {text}")
        return text
    raw = str(text).strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMBT]?)", raw)
    if not match:
        raise UsageError(f"{what}: expected a parameter count such as 671B, 37B or 1T, got {text!r}")
    scale = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}[match.group(2)]
    value = int(Fraction(match.group(1)) * scale)
    if value < 1:
        raise UsageError(f"{what}: must be positive, got {text!r}")
    return value
