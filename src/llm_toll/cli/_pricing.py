"""``prices MODEL``, ``cost --model M --in N --out N`` and ``update-pricing``: the price data
llm_toll prices calls with, asked directly. None of them opens a store."""

from __future__ import annotations

import argparse
import json
import warnings
from decimal import Decimal
from typing import Any

from llm_toll._budget.money import nanos_to_text
from llm_toll.cli._parser import CommandFailure
from llm_toll.exceptions import PricingMatrixOutdatedWarning
from llm_toll.pricing import default_registry
from llm_toll.pricing._sheet import PriceSheet, Rate
from llm_toll.reporter import format_usd
from llm_toll.usage._base import Usage, UsageError


def run_prices(args: argparse.Namespace, _session: object) -> int:
    sheet = default_registry.price_sheet(args.model, args.provider)
    if sheet is None:
        raise CommandFailure(_unknown(args.model, args.provider))
    print(json.dumps(_sheet_json(sheet), indent=2) if args.json else _sheet_text(sheet))
    return 0


def run_cost(args: argparse.Namespace, _session: object) -> int:
    try:
        usage = Usage.checked(
            args.input_tokens,
            args.output_tokens,
            cache_read_input_tokens=args.cache_read_input_tokens,
            cache_creation_input_tokens=args.cache_creation_input_tokens,
            reasoning_output_tokens=args.reasoning_output_tokens,
        )
    except UsageError as exc:
        raise CommandFailure(str(exc)) from exc
    if not default_registry.is_priced(args.model, args.provider):
        raise CommandFailure(_unknown(args.model, args.provider))
    price = default_registry.price(args.model, usage, provider=args.provider, at=args.at)
    if args.json:
        result = {
            "model": args.model,
            "cost": nanos_to_text(price.cost_nanos),
            "cost_nanos": price.cost_nanos,
            "source": price.source,
            "version": price.version,
        }
        print(json.dumps(result, indent=2))
    else:
        version = f" {price.version}" if price.version else ""
        print(f"{format_usd(price.cost_nanos)}  ({price.source}{version})")
    return 0


def run_update_pricing(args: argparse.Namespace, _session: object) -> int:
    from llm_toll.pricing._genai import data_version
    from llm_toll.pricing._update import update_pricing

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PricingMatrixOutdatedWarning)
        updated = update_pricing(url=args.url)
    if not updated:
        reason = caught[-1].message if caught else "the update failed"
        raise CommandFailure(str(reason))
    # The data lives in this process's memory: say so, or the user expects a lasting change.
    print(
        f"Prices updated: genai-prices data {data_version()}. This process only; call "
        "llm_toll.update_pricing() in your application to price its calls with it."
    )
    return 0


def _unknown(model: str, provider: str | None) -> str:
    via = f" at provider {provider!r}" if provider else ""
    message = f"no price known for model {model!r}{via}."
    providers = default_registry.providers_of(model)
    if providers:
        return f"{message} It is listed by provider {' and '.join(providers)}: add --provider."
    near = default_registry.similar_models(model)
    return f"{message} Did you mean: {', '.join(near)}?" if near else message


def _sheet_text(sheet: PriceSheet) -> str:
    version = f" {sheet.version}" if sheet.version else ""
    matched = f" (as {sheet.matched})" if sheet.matched else ""
    lines = [f"{sheet.model}{matched}: {sheet.source}{version}"]
    if not sheet.rates and not sheet.variants:
        lines.append("  free: a model served locally")
    lines += _rate_lines(sheet.rates, indent="  ")
    for when, rates in sheet.variants:
        condition = ", ".join(f"{name}={value}" for name, value in when.items())
        lines.append(f"  with {condition}:")
        lines += _rate_lines(rates, indent="    ")
    return "\n".join(lines)


def _rate_lines(rates: tuple[Rate, ...], indent: str) -> list[str]:
    width = max((len(rate.unit) for rate in rates), default=0)
    lines = []
    for rate in rates:
        line = f"{indent}{rate.unit.ljust(width)}  ${_usd(rate.usd)} / {rate.per}"
        for start, usd in rate.tiers:
            line += f"; above {start:,} input tokens ${_usd(usd)}"
        lines.append(line)
    return lines


def _usd(amount: Decimal) -> str:
    return format(amount.normalize(), "f")


def _sheet_json(sheet: PriceSheet) -> dict[str, Any]:
    def rates(items: tuple[Rate, ...]) -> list[dict[str, Any]]:
        return [
            {
                "unit": rate.unit,
                "usd": _usd(rate.usd),
                "per": rate.per,
                "tiers": [{"above": start, "usd": _usd(usd)} for start, usd in rate.tiers],
            }
            for rate in items
        ]

    return {
        "model": sheet.model,
        "source": sheet.source,
        "version": sheet.version,
        "matched": sheet.matched,
        "rates": rates(sheet.rates),
        "variants": [{"when": when, "rates": rates(items)} for when, items in sheet.variants],
    }
