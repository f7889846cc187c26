"""PII redaction benchmark: recall and precision of `bot.privacy.Redactor` on generated messages.

Customer-service messages are generated from templates with personal data in the formats
people type (emails; UK, German, French and US phone numbers, international and national;
Visa, Mastercard and Amex numbers, grouped or not; DE, GB, FR and NL IBANs, grouped or
compact) and with look-alikes that must stay readable (order numbers, dates, times, prices,
postcodes, card numbers failing Luhn, IBANs failing mod 97). A finding counts when its span
and kind match the generated one exactly.

    python -m bench.pii [--messages 2000] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import random
import string
from collections import Counter
from typing import Callable

from bench.timing import publish
from bot.privacy import Redactor, luhn_valid

FIRST = ["jane", "omar", "li", "anna", "mark", "sofia", "ahmed", "kate", "lucas", "mei", "ivan", "zoe"]
LAST = ["doe", "smith", "nguyen", "garcia", "müller", "okafor", "rossi", "kim", "novak", "brown"]
DOMAINS = ["example.com", "mail.example.co.uk", "shop-mail.de", "uni.example.edu", "post.example.fr", "gmail.com"]
IBAN_LENGTHS = {"DE": 22, "GB": 22, "FR": 27, "NL": 18}

Maker = Callable[[random.Random], str]


def email(rng: random.Random) -> str:
    first, last = rng.choice(FIRST), rng.choice(LAST).replace("ü", "u")
    local = rng.choice([f"{first}.{last}", f"{first[0]}{last}", f"{first}_{last}{rng.randint(1, 99)}", f"{first}+orders"])
    return f"{local}@{rng.choice(DOMAINS)}"


def phone(rng: random.Random) -> str:
    digits = lambda n: "".join(rng.choice(string.digits) for _ in range(n))  # noqa: E731
    return rng.choice([
        f"+44 20 {digits(4)} {digits(4)}",
        f"+44 7700 {digits(6)}",
        f"07700 {digits(6)}",
        f"(020) {digits(4)} {digits(4)}",
        f"+49 30 {digits(7)}",
        f"0049 (0)30 {digits(7)}",
        f"030 {digits(7)}",
        f"+33 6 {digits(2)} {digits(2)} {digits(2)} {digits(2)}",
        f"({rng.randint(200, 999)}) {digits(3)}-{digits(4)}",
        f"{rng.randint(200, 999)}-{digits(3)}-{digits(4)}",
        f"{rng.randint(200, 999)}.{digits(3)}.{digits(4)}",
        f"+1 {rng.randint(200, 999)} {digits(3)} {digits(4)}",
    ])


def _with_luhn(prefix: str, length: int, rng: random.Random, valid: bool = True) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    check = next(d for d in string.digits if luhn_valid(body + d))
    return body + (check if valid else str((int(check) + rng.randint(1, 9)) % 10))


def _group(number: str, sizes: list[int], separator: str) -> str:
    parts, at = [], 0
    for size in sizes:
        parts.append(number[at : at + size])
        at += size
    return separator.join(parts)


def card(rng: random.Random, valid: bool = True) -> str:
    kind = rng.choice(["visa", "mastercard", "amex"])
    if kind == "amex":
        number = _with_luhn(rng.choice(["34", "37"]), 15, rng, valid)
        sizes = [4, 6, 5]
    else:
        number = _with_luhn("4" if kind == "visa" else f"5{rng.randint(1, 5)}", 16, rng, valid)
        sizes = [4, 4, 4, 4]
    return rng.choice([number, _group(number, sizes, " "), _group(number, sizes, "-")])


def iban(rng: random.Random, valid: bool = True) -> str:
    country = rng.choice(list(IBAN_LENGTHS))
    bban = "".join(rng.choice(string.digits) for _ in range(IBAN_LENGTHS[country] - 4))
    if country == "GB":
        bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4)) + bban[4:]
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    check = 98 - int(numeric) % 97
    if not valid:
        check = (check + rng.randint(1, 90)) % 97 + 2
    compact = f"{country}{check:02d}{bban}"
    return rng.choice([compact, " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))])


def lookalike(rng: random.Random) -> str:
    """Text that resembles personal data but is not: it must survive redaction."""
    return rng.choice([
        f"{rng.choice('ABCDEFGH')}-{rng.randint(1000, 9999)}",
        f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        f"{rng.randint(1, 28)}.{rng.randint(1, 12)}.2026",
        f"{rng.randint(1, 12)}/{rng.randint(1, 28)}/2026",
        f"{rng.randint(0, 23):02d}:{rng.choice(['00', '15', '30', '45'])}",
        f"{rng.randint(5, 999)}.{rng.randint(0, 99):02d} EUR",
        f"{rng.randint(1, 9)},{rng.randint(100, 999)}.00",
        rng.choice(["SW1A 1AA", "10115", "75001", "EC1A 1BB"]),
        card(rng, valid=False),
        iban(rng, valid=False),
        f"{rng.randint(2, 12)} items",
    ])


TEMPLATES: list[tuple[str, list[str]]] = [
    ("my email is {0}", ["EMAIL"]),
    ("please send the return label to {0}, thanks", ["EMAIL"]),
    ("can you call me on {0}?", ["PHONE"]),
    ("my new number is {0} and my email {1}", ["PHONE", "EMAIL"]),
    ("I paid with card {0} but was charged twice", ["CARD"]),
    ("refund it to {0} please", ["IBAN"]),
    ("my iban: {0}", ["IBAN"]),
    ("order {0} never arrived, reach me at {1}", ["LOOK", "PHONE"]),
    ("card {0}, phone {1}", ["CARD", "PHONE"]),
    ("it was delivered on {0} but the box was empty", ["LOOK"]),
    ("I ordered {0} and {1}", ["LOOK", "LOOK"]),
    ("the total was {0}, my account {1}", ["LOOK", "IBAN"]),
    ("write to {0} or ring {1} after {2}", ["EMAIL", "PHONE", "LOOK"]),
    ("where is my parcel? reference {0}", ["LOOK"]),
]
MAKERS: dict[str, Maker] = {"EMAIL": email, "PHONE": phone, "CARD": card, "IBAN": iban, "LOOK": lookalike}


def generate(count: int, seed: int) -> list[tuple[str, list[tuple[int, int, str]]]]:
    """``count`` messages, each with its personal data as (start, end, kind)."""
    rng = random.Random(seed)
    messages = []
    for _ in range(count):
        template, kinds = rng.choice(TEMPLATES)
        values = [MAKERS[kind](rng) for kind in kinds]
        text, gold = "", []
        for index, part in enumerate(template.split("{")):
            if index == 0:
                text += part
                continue
            number, rest = part.split("}", 1)
            value, kind = values[int(number)], kinds[int(number)]
            if kind != "LOOK":
                gold.append((len(text), len(text) + len(value), kind))
            text += value + rest
        messages.append((text, gold))
    return messages


def score(redactor: Redactor, messages: list[tuple[str, list[tuple[int, int, str]]]]) -> dict[str, object]:
    counts: Counter[tuple[str, str]] = Counter()
    clean_messages = clean_untouched = 0
    for text, gold in messages:
        found = {(f.start, f.end, f.kind) for f in redactor.find(text)}
        expected = set(gold)
        for _, _, kind in found & expected:
            counts[(kind, "tp")] += 1
        for _, _, kind in found - expected:
            counts[(kind, "fp")] += 1
        for _, _, kind in expected - found:
            counts[(kind, "fn")] += 1
        if not gold:
            clean_messages += 1
            clean_untouched += not found
    result: dict[str, object] = {"messages": len(messages), "pii_items": sum(len(g) for _, g in messages)}
    kinds = sorted({kind for kind, _ in counts})
    for kind in [*kinds, "all"]:
        tp = sum(v for (k, t), v in counts.items() if t == "tp" and kind in (k, "all"))
        fp = sum(v for (k, t), v in counts.items() if t == "fp" and kind in (k, "all"))
        fn = sum(v for (k, t), v in counts.items() if t == "fn" and kind in (k, "all"))
        result[kind] = {"recall": round(tp / max(tp + fn, 1), 4), "precision": round(tp / max(tp + fp, 1), 4), "n": tp + fn}
    result["untouched_without_pii"] = round(clean_untouched / max(clean_messages, 1), 4)
    return result


def table(result: dict[str, object], seed: int) -> str:
    lines = [
        "# PII redaction benchmark (python -m bench.pii)",
        "",
        f"{result['messages']} generated customer messages (seed {seed}) holding {result['pii_items']} items of personal",
        "data among look-alikes (order numbers, dates, times, prices, postcodes, card numbers failing Luhn,",
        "IBANs failing mod 97). A finding counts only with the exact span and kind.",
        "",
        "| kind | items | recall | precision |",
        "|---|---|---|---|",
    ]
    for kind, row in result.items():
        if isinstance(row, dict):
            lines.append(f"| {kind} | {row['n']} | {row['recall']:.4f} | {row['precision']:.4f} |")
    lines += ["", f"Messages without personal data left exactly as they were: {result['untouched_without_pii']:.4f}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = score(Redactor(), generate(args.messages, args.seed))
    publish("pii", result, table(result, args.seed), args.json)


if __name__ == "__main__":
    main()
