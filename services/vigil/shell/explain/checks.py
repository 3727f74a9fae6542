"""Checks every explanation must pass before anyone reads it.

`check_text` returns the names of the checks a text fails (empty: it passes). The rules come
from the design's "Patient safety is the product":

- `unsupported_number`: every number in the text (digits, English number words from "two"
  up, Chinese numerals before a unit) must be a number in the facts. No whitelist: the
  emergency number is in the facts, and templates never write times or counts of their own.
- `certain_diagnosis`: a named condition in a sentence with no hedge ("may", "could",
  "possible", "consider", 可能, 疑似...). "You may have an infection" passes; "You have
  an infection" and "This is not sepsis" (certain either way) fail.
- `medication`: no medicine names, no dose patterns ("500 mg", "two tablets", 两片), no advice
  to change oxygen. Applied to both audiences: Vigil never gives a dose.
- `emergency_line`: a high or critical clinical alert's patient text states the emergency number.
- `language`: English texts contain no Chinese; Chinese texts are mostly Chinese.
- `length`: per audience and language.
- `reading_grade`: patient texts at grade 8 or below. English: Flesch-Kincaid grade. Chinese:
  a proxy, mean sentence length in units (a Han character, or a Latin word or number) / 3,
  so 24 units a sentence on average is "grade 8". It is a rule of thumb we chose, not a
  validated Chinese readability formula; it keeps sentences short, which is what we can check.

Why Flesch-Kincaid is computed here and not by `textstat.flesch_kincaid_grade`: textstat 0.7
counts English syllables with NLTK's CMU dictionary and downloads it on first use. Vigil must
run offline and give the same grade on every machine, so words and sentences are counted here
and syllables are the larger of pyphen's hyphenation count (textstat's own fallback) and a
vowel-group count; taking the larger errs towards a higher, stricter grade.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Literal

import pyphen

from vigil.shell.explain.facts import AlertFacts, numbers_in

Audience = Literal["patient", "clinician"]
MAX_READING_GRADE = 8.0
MAX_CHARS: dict[tuple[str, str], int] = {
    ("patient", "en"): 600, ("patient", "zh"): 220, ("clinician", "en"): 900, ("clinician", "zh"): 600,
}
# Share of Han characters among letters (Han + Latin) a Chinese text must reach. Clinician
# texts keep SpO2, NEWS2, mmHg and the English parts of a rule, so their floor is lower.
MIN_HAN_SHARE: dict[str, float] = {"patient": 0.6, "clinician": 0.3}
CHECK_ORDER = ("empty", "language", "unsupported_number", "certain_diagnosis", "medication",
               "emergency_line", "length", "reading_grade")

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")
EN_NUMBER_WORDS: dict[str, int] = {
    # "one" is left out: "no one", "one of your readings" are not quantities.
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
}
_EN_NUMBER_WORD = re.compile(r"\b(" + "|".join(EN_NUMBER_WORDS) + r")\b", re.IGNORECASE)
_ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_ZH_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000}
# A Chinese numeral counts only before a measure word: 十分 ("very") is not ten, 十分钟 is.
_ZH_NUMERAL = re.compile(r"([零〇一二两三四五六七八九十百千万]+)(?=个|次|分钟|小时|天|周|片|粒|毫克|毫升|度|岁|秒|倍|公斤|升|喷)")

_DIAGNOSES_EN = re.compile(
    r"\b(sepsis|septic|heart attack|myocardial infarction|cardiac arrest|stroke|pneumonia|covid(?:-19)?|"
    r"coronavirus|influenza|flu|infections?|infected|atrial fibrillation|a-?fib|arrhythmias?|heart failure|"
    r"pulmonary embolism|embolism|blood clots?|thrombosis|dvt|copd|exacerbation|asthma attack|cancer|"
    r"kidney failure|renal failure|acute kidney injury|dehydration|dehydrated|anaemia|anemia|diabetes|"
    r"ketoacidosis|meningitis|angina|pericarditis|shock)\b|\b(AF|MI|PE|TIA|AKI)\b", re.IGNORECASE)
_HEDGES_EN = re.compile(
    r"\b(may|might|could|possible|possibly|perhaps|consider|considering|suspect|suspected|query|rule out|"
    r"exclude|differential|ddx|risk of|concern for|unlikely|likely|can be a sign|assess for|screen for)\b|\?", re.IGNORECASE)
_DIAGNOSES_ZH = re.compile(
    r"败血症|脓毒症|心脏病发作|心梗|心肌梗死|心肌梗塞|心脏骤停|中风|卒中|肺炎|新冠|流感|感染|房颤|心房颤动|心律失常|"
    r"心力衰竭|心衰|肺栓塞|栓塞|血栓|慢阻肺|哮喘发作|癌|肾衰竭|肾损伤|脱水|贫血|糖尿病|酮症酸中毒|脑膜炎|心绞痛|休克")
_HEDGES_ZH = re.compile(r"可能|也许|或许|不排除|排除|是否|疑似|考虑|警惕|风险|？|\?")

_MEDICATION_EN = re.compile(
    r"\b(paracetamol|acetaminophen|tylenol|ibuprofen|advil|nurofen|aspirin|naproxen|codeine|morphine|tramadol|"
    r"oxycodone|salbutamol|albuterol|ventolin|inhalers?|nebuli[sz]ers?|nitroglycerin|glyceryl trinitrate|gtn|"
    r"amlodipine|ramipril|lisinopril|bisoprolol|metoprolol|atenolol|furosemide|frusemide|warfarin|apixaban|"
    r"rivaroxaban|heparin|insulin|metformin|prednisolone|prednisone|steroids?|antibiotics?|amoxicillin|"
    r"penicillin|antipyretics?|diuretics?|beta[- ]blockers?|painkillers?|medicines?|medications?|meds|drugs?|"
    r"tablets?|pills?|capsules?|doses?|dosage|dosing|puffs?|injections?)\b", re.IGNORECASE)
_DOSE_EN = re.compile(
    r"\d+(?:\.\d+)?\s*(?:mg|mcg|µg|micrograms?|milligrams?|grams?|ml|millilit(?:re|er)s?|units?|iu|"
    r"l/min|litres? per minute|liters? per minute)\b", re.IGNORECASE)
_OXYGEN_CHANGE_EN = re.compile(
    r"\b(increase|turn up|raise|decrease|turn down|reduce|lower|adjust|titrate|start|stop|give|put on)\b[^.]{0,30}\boxygen\b",
    re.IGNORECASE)
_MEDICATION_ZH = re.compile(
    r"药|服用|剂量|毫克|毫升|微克|吸入器|雾化|阿司匹林|布洛芬|对乙酰氨基酚|扑热息痛|泰诺|硝酸甘油|胰岛素|抗生素|激素|"
    r"利尿剂|降压|止痛|退烧|[\d一二两三四五六七八九十半]+\s*(?:片|粒|喷|单位|mg|ml)|(?:调高|调低|增加|减少|加大|开始|停止)[^。]{0,10}氧")

_pyphen = pyphen.Pyphen(lang="en_US")


def _zh_numeral(text: str) -> int:
    total, section, digit = 0, 0, 0
    for ch in text:
        if ch in _ZH_DIGITS:
            digit = _ZH_DIGITS[ch]
        elif ch == "万":
            total += (section + digit) * 10000
            section = digit = 0
        else:
            section += (digit or 1) * _ZH_UNITS[ch]
            digit = 0
    return total + section + digit


def quantities(text: str) -> list[float]:
    """Every number stated in `text`: digits, English number words, Chinese numerals before a unit."""
    found = numbers_in(text)
    found += [float(EN_NUMBER_WORDS[m.group(1).lower()]) for m in _EN_NUMBER_WORD.finditer(text)]
    found += [float(_zh_numeral(m.group(1))) for m in _ZH_NUMERAL.finditer(text) if m.group(1) != "一"]
    return found


def unsupported_numbers(text: str, facts: AlertFacts) -> list[float]:
    """The numbers in `text` that are not in the facts (37.80 and 37.8 are the same number)."""
    allowed = facts.supported_numbers
    return [n for n in quantities(text) if round(abs(n), 6) not in allowed]


@lru_cache(maxsize=4096)
def _syllables(word: str) -> int:
    if word[0].isdigit():
        return 1
    groups = len(re.findall(r"[aeiouy]+", word))
    if word.endswith("e") and not word.endswith(("le", "ee")) and groups > 1:
        groups -= 1
    return max(1, groups, len(_pyphen.positions(word)) + 1)


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+|[。！？!?；;]", text) if s.strip()]


def reading_grade(text: str, language: str) -> float:
    """Flesch-Kincaid grade for English; the sentence-length proxy above for Chinese."""
    sentences = _sentences(unicodedata.normalize("NFKC", text))
    if not sentences:
        return 0.0
    if language == "zh":
        units = [len(_HAN.findall(s)) + len(re.findall(r"[A-Za-z]+|\d+(?:\.\d+)?", s)) for s in sentences]
        return round(sum(units) / len(units) / 3, 1)
    words = [w.lower() for w in re.findall(r"[A-Za-z]+(?:'[A-Za-z]+)?|\d+(?:\.\d+)?", text)]
    if not words:
        return 0.0
    syllables = sum(_syllables(w) for w in words)
    return round(0.39 * len(words) / len(sentences) + 11.8 * syllables / len(words) - 15.59, 1)


def _certain_diagnosis(text: str, language: str) -> bool:
    diagnoses, hedges = (_DIAGNOSES_ZH, _HEDGES_ZH) if language == "zh" else (_DIAGNOSES_EN, _HEDGES_EN)
    for sentence in _sentences(text) if language != "zh" else re.split(r"[。！!；;\n]", text):
        # English sentences get the Chinese terms too (and the other way): a model answering in
        # the wrong language must not slip a diagnosis past the checks.
        named = diagnoses.search(sentence) or _DIAGNOSES_ZH.search(sentence) or _DIAGNOSES_EN.search(sentence)
        if named and not (hedges.search(sentence) or _HEDGES_ZH.search(sentence) or _HEDGES_EN.search(sentence)):
            return True
    return False


def _medication(text: str) -> bool:
    return bool(_MEDICATION_EN.search(text) or _DOSE_EN.search(text) or _OXYGEN_CHANGE_EN.search(text)
                or _MEDICATION_ZH.search(text))


def wrong_language(text: str, language: str, audience: Audience) -> bool:
    han, latin = len(_HAN.findall(text)), len(_LATIN.findall(text))
    if language == "zh":
        return han == 0 or han / (han + latin) < MIN_HAN_SHARE[audience]
    return han > 0 or latin == 0


def check_text(text: str, facts: AlertFacts, audience: Audience) -> list[str]:
    """The names of the checks `text` fails, in CHECK_ORDER; empty when it may be delivered."""
    if not text or not text.strip():
        return ["empty"]
    lang = facts.language
    failed = []
    if wrong_language(text, lang, audience):
        failed.append("language")
    if unsupported_numbers(text, facts):
        failed.append("unsupported_number")
    if _certain_diagnosis(text, lang):
        failed.append("certain_diagnosis")
    if _medication(text):
        failed.append("medication")
    if (audience == "patient" and facts.category == "clinical" and facts.severity in ("high", "critical")
            and not re.search(rf"(?<![\d.]){re.escape(facts.emergency_number)}(?![\d])", text)):
        failed.append("emergency_line")
    if len(text) > MAX_CHARS[(audience, lang)]:
        failed.append("length")
    if audience == "patient" and reading_grade(text, lang) > MAX_READING_GRADE:
        failed.append("reading_grade")
    return failed
