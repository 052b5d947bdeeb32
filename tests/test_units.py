"""units.py: element formats, the one number parser (tokens, counts, sizes, percents) and the formatters."""

from __future__ import annotations

from fractions import Fraction

import pytest

from mla_mem.errors import UsageError
from mla_mem.units import (
    exact_decimal,
    format_bytes,
    format_number,
    format_tokens,
    json_number,
    parse_count,
    parse_dtype,
    parse_params,
    parse_percent,
    parse_size,
    parse_token_list,
    parse_tokens,
)


@pytest.mark.parametrize(
    "name,values,expected",
    [
        ("bf16", 576, 1152),
        ("fp8", 576, 576),
        ("fp32", 3, 12),
        ("int4", 3, 2),  # 12 bits round up to 2 bytes
        ("q8_0", 576, 18 * 34),  # 18 blocks of 32 values, 34 B each (ggml-common.h block_q8_0)
        ("q4_0", 576, 18 * 18),
        ("nvfp4", 576, 288 + 36),  # 4-bit values + one fp8 scale per 16
        ("mxfp4", 64, 32 + 2),  # 4-bit values + one e8m0 scale per 32
        ("6bit", 4, 3),
    ],
)
def test_row_bytes(name, values, expected):
    assert parse_dtype(name).row_bytes(values) == expected


def test_dtype_aliases_and_errors():
    assert parse_dtype("bfloat16").name == "bf16" and parse_dtype("fp8").name == "fp8_e4m3"
    assert parse_dtype("float8_e5m2").name == "fp8_e5m2"
    with pytest.raises(UsageError, match="unknown cache dtype"):
        parse_dtype("bf17")


@pytest.mark.parametrize(
    "text,value",
    [("131072", 131072), ("128k", 128_000), ("128K", 131_072), ("1M", 1 << 20), ("1.5k", 1500), ("131,072", 131072),
     ("131_072", 131072), ("1,000", 1000), ("2,000,000", 2_000_000), (4096, 4096)],
)  # fmt: skip
def test_tokens(text, value):
    assert parse_tokens(text) == value


@pytest.mark.parametrize("text", ["0", "-1", "1e3", "K128", "1.5K", "12XB", "", "1,00", True])
def test_bad_tokens(text):
    with pytest.raises(UsageError):
        parse_tokens(text)


def test_token_lists_read_as_meant():
    assert parse_token_list(["131,072"]) == [131072]  # thousands separators, as mla-mem prints numbers
    assert parse_token_list(["32K,128K", "1M"]) == [32768, 131072, 1 << 20]
    assert parse_token_list(["4096,8192"]) == [4096, 8192]
    assert parse_token_list(["1K", "1024"]) == [1024]  # duplicates collapse
    with pytest.raises(UsageError, match="ambiguous"):
        parse_token_list(["1,000,2,000"])


def test_counts_sizes_percents():
    assert parse_count("1,000") == 1000 and parse_count("16") == 16
    with pytest.raises(UsageError):
        parse_count("16K")
    assert parse_size("80GiB") == 80 << 30 and parse_size("60 GB") == 60 * 10**9 and parse_size("123B") == 123
    assert parse_size("1.5TiB") == 3 << 39 and parse_size(4096) == 4096
    with pytest.raises(UsageError, match="bare number is ambiguous"):
        parse_size("80")
    assert parse_percent("5%", "x") == 5 and parse_percent("0.5", "x") == Fraction(1, 2)
    with pytest.raises(UsageError):
        parse_percent("five", "x")
    assert parse_params("671B", "x") == 671 * 10**9 and parse_params("1.6T", "x") == 1_600 * 10**9


def test_formatters():
    assert format_bytes(9_210_691_584) == "8.58 GiB" and format_bytes(9_210_691_584, "si") == "9.21 GB"
    assert format_bytes(1000) == "1,000 B" and format_bytes(-2 * 2**30) == "-2.00 GiB"
    assert format_number(Fraction(88183, 16)) == "5,511.4375" and format_number(70272) == "70,272"
    assert format_number(Fraction(1, 3)) == "0.3333"  # no finite decimal: rounded for reading only
    assert exact_decimal(Fraction(1, 3)) is None and exact_decimal(Fraction(5, 4)) == "1.25"
    assert json_number(Fraction(4, 2)) == 2 and json_number(Fraction(1, 4)) == 0.25
    assert format_tokens(131072) == "128K" and format_tokens(128000) == "125K" and format_tokens(100_000) == "100k"
    assert format_tokens(100_001) == "100,001"
