"""Checks on the model's part of an explanation: what changed, and nothing else.

The model no longer writes what the patient must do: Vigil's frame (templates.patient_frame)
does, verbatim. The model's part, placed in front of that frame, may only explain what changed.
These checks hold it to that, in English and Chinese, and refuse whenever they are unsure (the
template then goes out):

- `dismissal`: negation of care ("do not call", "no need to", 不用, 无需) and, for clinicians,
  any word that tells the team to acknowledge, dismiss, close, wait or do nothing;
- `instruction`: any instruction at all (imperatives, "you should", "please", 请, 应该, 建议, a
  patient sentence that does not open like an account, e.g. with a bare verb): what to do is
  Vigil's text, never the model's;
- `commitment` (patient): promises only Vigil's frame makes (who was told, who will come, when:
  "a nurse will call", "an ambulance is on its way", 救护车);
- `reassurance`: polarity against the alert's severity ("normal", "fine", "nothing to worry
  about", "stable", 正常, 没事), and minimisers ("slightly", "only", 稍微) on high and critical
  alerts (and on every clinical alert in the clinician's summary);
- `contact`: links, e-mail addresses, phone numbers (the emergency number too: it lives in the
  frame), requests to log in, reply or give details, and questions;
- `diagnosis`: any condition in any wording, hedged or not, lay paraphrases included ("your heart
  is failing", "water on the lungs", 心脏不行了);
- `unsupported_number`: numbers in every written form (digits of any script, full-width, English
  words and compounds, Chinese numerals with or without a measure word, "twice", "half", ①, Ⅻ)
  must be numbers in the facts;
- `form`: the field's limits (sentences, characters, no line breaks or lists);
- `off_topic`: every sentence must be about the readings (name a reading, the monitor, the
  alert or the data): a sentence about anything else is outside the contract, whatever it says.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

from vigil.shell.explain.facts import AlertFacts, numbers_in

Audience = Literal["patient", "clinician"]

# The output contract's limits: (audience, language) -> (max sentences, max characters).
PART_LIMITS: dict[tuple[str, str], tuple[int, int]] = {
    ("patient", "en"): (2, 200), ("patient", "zh"): (2, 80),
    ("clinician", "en"): (3, 360), ("clinician", "zh"): (3, 200),
}
PART_CHECKS = ("form", "off_topic", "contact", "dismissal", "instruction", "commitment", "reassurance", "diagnosis",
               "unsupported_number")


def _words(*alternatives: str) -> re.Pattern[str]:
    return re.compile(r"(?<![A-Za-z])(?:" + "|".join(alternatives) + r")(?![A-Za-z])", re.IGNORECASE)


# -- negation of care and dismissal ---------------------------------------------------------
_DISMISS_EN = _words(
    r"do(?:es)? ?n[o']?t (?:need|have) to", r"no need", r"needn'?t", r"not necessary", r"unnecessary",
    r"don'?t", r"do not", r"never (?:call|contact|go|ring|phone|tell|bother)", r"no (?:action|rush|hurry|call|reason)",
    r"nothing (?:to do|needs|further|more)", r"(?:not|no longer) (?:urgent|needed|required|an emergency|a priority)",
    r"wait(?:ing)?(?: and see| it out| until| for)?", r"hold off", r"put off", r"delay", r"later", r"tomorrow",
    r"ignore[sd]?", r"ignoring", r"disregard", r"dismiss(?:ed|ing)?", r"acknowledge[sd]?", r"acknowledging",
    r"close (?:it|this|the)", r"resolve (?:it|this|the)", r"mark(?:ed)? (?:it|this|as)", r"stand down",
    r"false (?:alarm|positive)", r"artefact", r"artifact", r"spurious", r"glitch", r"sensor error", r"not real",
    r"can be (?:ignored|closed|dismissed|skipped)", r"safe to", r"without (?:calling|contacting|bothering)",
    r"(?:take|took|taking|pull|pulled|switch|switched|turn|turned|unplug|strip|slip)\b[^.]{0,30}\b(?:off|out)",
    r"remove[sd]?", r"removing", r"bother(?:ing)?", r"skip", r"cancel", r"de-?escalat\w*", r"downgrad\w*",
    r"routine", r"low priority", r"no further", r"unconcerning", r"not (?:concerning|worrying|worried)",
)
_DISMISS_ZH = re.compile(
    r"不用|不必|无需|无须|不需要|没必要|(?<![特区分个识类级告])别|不要|勿|不用担心|暂缓|推迟|稍后|晚点|明天|等等|等一等|等待|观望|先等|忽略|无视|不理|"
    r"确认|关闭|驳回|解除|撤销|降级|误报|假警报|伪影|传感器错误|不紧急|不急|不是紧急|取下|摘下|摘掉|关掉|关机|拿掉|"
    r"不处理|无需处理|不予处理|无需行动|不采取")

# -- any instruction ------------------------------------------------------------------------
_DIRECT_EN = _words(  # both audiences: telling the reader what to do
    r"please", r"you (?:should|must|need|have to|ought|had better|'d better|can|could|may want|might want)",
    r"(?:we|i) (?:recommend|advise|suggest|urge)", r"recommend(?:ed)?", r"advis(?:e|ed|able)", r"suggest(?:ed)?",
    r"should", r"must", r"needs? to", r"ought", r"make sure", r"be sure", r"let'?s", r"it is (?:best|important|wise|better)",
    r"best to", r"consider", r"escalate", r"reassure", r"discharge", r"treat", r"give", r"administer", r"continue",
    r"call", r"contact", r"page", r"send", r"transfer", r"admit", r"arrange", r"prioriti[sz]e", r"action",
)
_INSTRUCT_EN = _words(
    r"please", r"you (?:should|must|need|have to|ought|had better|'d better|can|could|may want|might want)",
    r"(?:we|i) (?:recommend|advise|suggest|urge)", r"recommend(?:ed)?", r"advis(?:e|ed|able)", r"suggest(?:ed)?",
    r"make sure", r"be sure", r"try to", r"let'?s", r"it is (?:best|important|wise|better)", r"best to",
    r"go to", r"head to", r"drive", r"get (?:to|a|an|someone|help|checked)", r"seek", r"visit", r"book",
    r"call", r"ring", r"phone", r"dial", r"contact", r"message", r"text us", r"tell", r"inform", r"report",
    r"sit", r"stand", r"lie", r"rest", r"relax", r"breathe", r"drink", r"eat", r"walk", r"exercise", r"sleep",
    r"keep", r"stay", r"stop", r"start", r"avoid", r"continue", r"check", r"monitor (?:yourself|your)",
    r"take", r"use", r"wear", r"charge", r"open", r"lock", r"unlock", r"leave", r"go", r"come",
    r"review", r"escalate", r"assess", r"examine", r"page", r"order", r"repeat", r"recheck", r"observe",
    r"reassure", r"discharge", r"treat", r"give", r"administer", r"consider",
)
_DIRECT_ZH = re.compile(r"请|应该|应当|必须|需要|务必|一定要|建议|推荐|最好|立即|立刻|马上|尽快|及时|继续|"
                        r"安排|上报|升级|转诊|收治|给予|处理|联系|通知|呼叫|拨打|优先|考虑|出院|入院|给氧|予氧|氧气|确保")
_INSTRUCT_ZH = re.compile(
    r"请|应该|应当|须|必须|需要|务必|一定要|建议|推荐|最好|记得|赶紧|赶快|立即|立刻|马上|尽快|尽早|及时|"
    r"拨打|致电|打电话|联系|告诉|通知|去医院|就医|就诊|看医生|急诊|开车|驾车|打车|前往|"
    r"坐下|坐直|躺下|休息(?!时)|放松|喝水|多喝|吃|走动|运动|睡|保持|继续|停止|开始|避免|检查|佩戴|充电|服用|"
    r"复核|评估|处理|安排|上报|升级|观察|给予|把|让|对着|确保|注意(?!到)|留意(?!到)|试试|试着|尝试|多喝|多吃|多休息|少吃|少动|就行|就好|即可|就可以|可以|躺|坐着|站着|起身|走动")

# -- promises Vigil did not make (who was told, who will come, when) -----------------------------
_COMMIT_EN = _words(r"ambulance", r"paramedics?", r"on (?:its|their|the) way", r"will (?:call|ring|phone|visit|come|see|contact|arrive|be)",
                    r"(?:has|have) been (?:told|informed|notified|called|alerted|sent)", r"nurses?", r"doctors?", r"gp",
                    r"team", r"hospital", r"clinic", r"a ?(?:&|and) ?e", r"emergency", r"within (?:the|an|a)", r"soon", r"shortly")
_COMMIT_ZH = re.compile(r"救护车|急救|在路上|会给您|将会|马上会|护士|医生|团队|医院|诊所|急诊|已通知|已告知|已经通知|很快|稍后会|即将")
# Patient sentences must open like an account of what changed (a subject), not like a command:
# an imperative opens with its verb. An opener not on this list is treated as an instruction.
_OPENERS_EN = re.compile(
    r"^(?:your|you|we|the|this|that|these|those|it|its|there|our|vigil|over|in|on|at|since|earlier|today|tonight|"
    r"several|some|both|a|an|one|during|for|from|compared|when|while|after|before|recently|lately|yesterday|"
    r"overall|each|all|of|last|this|with|by|as|more|most|over|\d)\b", re.IGNORECASE)

# -- on topic: every sentence of the model's part is about the readings -------------------------
_TOPIC_EN = _words(
    r"readings?", r"read", r"levels?", r"rate", r"pressure", r"temperature", r"breath\w*", r"oxygen", r"heart\w*",
    r"pulse", r"monitor", r"battery", r"signal", r"pattern", r"alert", r"values?", r"measure\w*", r"usual(?:ly)?",
    r"baseline", r"trend", r"spo2", r"news2", r"hr", r"rr", r"sbp", r"dbp", r"bp", r"temp", r"risk", r"score",
    r"drivers?", r"rule", r"threshold", r"data", r"breakdown", r"mmhg", r"bpm", r"trigger\w*")
_TOPIC_ZH = re.compile(r"读数|心率|心跳|血氧|血压|体温|呼吸|脉搏|监测|设备|电量|信号|模式|警报|提醒|数值|测到|测量|平时|基线|趋势|"
                       r"SpO2|NEWS2|风险|评分|规则|阈值|数据|分项|mmHg|bpm|触发|收缩压|舒张压", re.IGNORECASE)

# -- polarity against the alert -------------------------------------------------------------
_REASSURE_EN = _words(
    r"normal(?:ly)?", r"fine", r"ok(?:ay)?", r"all right", r"alright", r"good", r"great", r"healthy",
    r"(?:doing|looks?|looking|feel|feeling|is|are|be) well",
    r"safe", r"stable", r"steady", r"settled", r"reassur\w*", r"nothing (?:to worry|serious|wrong|to be)",
    r"no (?:cause|reason|need) (?:for|to)", r"not (?:serious|dangerous|a problem|a concern|an issue|bad|worrying)",
    r"no (?:problem|concern|danger|issue|worries)", r"(?:don'?t|do not|no need to) (?:worry|panic|be alarmed)",
    r"harmless", r"benign", r"expected", r"typical", r"usual for you", r"within (?:range|limits|the normal)",
    r"in range", r"acceptable", r"improv\w*", r"better", r"recover\w*", r"back to", r"resolv\w*", r"gone",
    r"passed", r"cleared", r"low risk", r"minimal", r"unremarkable", r"reassuring", r"nothing",
)
_REASSURE_ZH = re.compile(
    r"正常|没事|没关系|不要紧|无碍|无大碍|不用担心|无需担心|别担心|放心|良好|很好|还好|挺好|健康(?!状况)|安全|稳定|平稳|不严重|"
    r"没什么|没问题|无问题|无异常|好转|改善|恢复|已经过去|消失|低风险|风险低|可以接受|在范围内|意料之中|预期")
_MINIMISE_EN = _words(r"slight(?:ly)?", r"a (?:bit|little|touch)", r"little", r"minor", r"mild(?:ly)?",
                      r"small", r"only", r"just", r"barely", r"marginal(?:ly)?", r"somewhat", r"a tad")
_MINIMISE_ZH = re.compile(r"稍|略|一点|有点|一些|轻微|轻度|只是|仅|不过是|小小|微微|些许")

# -- links, contact details, requests for information -----------------------------------------
_URL = re.compile(r"(?:https?://|ftp://|www\.|\b[\w-]+\.(?:com|org|net|io|co|uk|cn|nhs|gov|info|app|link|ly|me)\b)", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+\s*(?:@|＠|\(at\)|\[at\])\s*[\w-]+(?:\.|\(dot\)|\[dot\])[\w.]+", re.IGNORECASE)
_PHONE = re.compile(r"\+?\d[\d\s\-()]{5,}\d")
_REQUEST_EN = _words(
    r"log ?in", r"sign ?in", r"password", r"passcode", r"pin", r"verify", r"verification", r"confirm your",
    r"click", r"tap", r"link", r"reply", r"respond", r"send (?:us|me)", r"share", r"provide", r"enter",
    r"your details", r"date of birth", r"address", r"bank", r"card", r"account", r"website", r"email", r"e-mail",
    r"app store", r"download", r"whatsapp", r"wechat", r"hotline", r"helpline", r"number", r"extension",
)
_REQUEST_ZH = re.compile(r"登录|登陆|密码|验证码|验证|点击|链接|网址|网站|回复|提供您|填写|输入|个人信息|身份证|银行|"
                         r"账户|账号|地址|下载|微信|邮箱|邮件|热线|电话|号码|扫码|二维码")

# -- diagnosis in any wording ---------------------------------------------------------------
_DIAGNOSIS_EN = _words(
    r"sepsis", r"septic", r"blood poisoning", r"heart attack", r"cardiac arrest", r"arrest", r"infarct\w*",
    r"stroke", r"mini-?stroke", r"tia", r"pneumonia", r"chest infection", r"lung infection", r"infect\w*",
    r"virus", r"viral", r"bacteri\w*", r"bug", r"flu", r"influenza", r"covid(?:-19)?", r"corona\w*", r"cold",
    r"fibrillation", r"a-?fib", r"af", r"arrhythmi\w*", r"heart (?:is |was )?(?:failing|failure|giving (?:out|up)|weak\w*|damage\w*|disease|condition|trouble|problem\w*|rhythm problem)",
    r"(?:heart|lungs?|kidneys?|liver|organs?) (?:are |is )?(?:failing|shutting down|struggling|giving (?:out|up)|packing up|not coping)",
    r"(?:fluid|water) (?:in|on) (?:the|your) lungs?", r"lungs? (?:are |is )?fill\w*", r"embol\w*", r"clots?",
    r"thrombo\w*", r"dvt", r"pe", r"mi", r"aki", r"copd", r"asthma", r"flare-?up", r"exacerbation",
    r"cancer", r"tumou?r", r"kidney failure", r"renal", r"dehydrat\w*", r"an(?:a)?emi\w*", r"diabet\w*",
    r"ketoacidosis", r"hypo", r"meningitis", r"angina", r"\w+itis", r"shock", r"collaps\w*", r"faint\w*",
    r"seizures?", r"fitting", r"a fit", r"dying", r"crash(?:ing)?", r"disease", r"disorder",
    r"syndrome", r"illness", r"sick", r"diagnos\w*", r"suffering from", r"panic attack", r"anxiety",
)
# Patients also get no clinical descriptor and no cause: "a sign of", "due to", "tachycardia".
_DIAGNOSIS_PATIENT_EN = _words(
    r"deteriorat\w*", r"condition", r"you have (?:a|an|got)", r"you(?:'ve| have) got", r"caused by", r"because of",
    r"due to", r"signs? of", r"symptoms? of", r"consistent with", r"suggest(?:s|ive)? of", r"points? to",
    r"indicat\w*", r"hypertensi\w*", r"hypotensi\w*", r"hypox\w*", r"tachy\w*", r"brady\w*", r"pyrexi\w*",
    r"febrile", r"hypotherm\w*", r"fever\w*", r"fit", r"fluids?", r"water", r"lungs?", r"kidneys?", r"liver", r"blood(?! pressure)",
    r"oxygen (?:therapy|supply|cylinder|concentrator|mask)",
)
_DIAGNOSIS_ZH = re.compile(
    r"败血症|脓毒|血液中毒|心脏病|心梗|心肌|梗死|梗塞|骤停|中风|卒中|肺炎|感染|病毒|细菌|流感|感冒|新冠|房颤|心律失常|心律不齐|"
    r"衰竭|心衰|心脏(?:不行|出了?问题|有问题|受损|衰弱|不好)|(?:肺|肾|肝|器官)(?:不行|出了?问题|衰竭)|肺(?:里)?(?:有)?积水|积液|"
    r"栓塞|血栓|血块|慢阻肺|哮喘|癌|瘤|肾损伤|脱水|贫血|糖尿病|酸中毒|脑膜炎|心绞痛|休克|晕倒|昏厥|昏迷|癫痫|抽搐|"
    r"炎|病|症|诊断|确诊|患有|患上|得了|焦虑|惊恐")
_DIAGNOSIS_PATIENT_ZH = re.compile(r"是因为|因为|由于|导致|引起|迹象|征兆|表明|说明您|恶化|高血压|低血压|低氧|发烧|发热|心动过|呼吸过|状况|积水|积液|肺|肾|肝")

# -- numbers in every written form ----------------------------------------------------------
_EN_UNITS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
             "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
             "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19}
_EN_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
            "eighty": 80, "ninety": 90}
_EN_SCALES = {"hundred": 100, "thousand": 1000}
_EN_NUMBER_RUN = re.compile(
    r"\b(?:(?:" + "|".join([*_EN_UNITS, *_EN_TENS, *_EN_SCALES, "a"]) + r")(?:[\s-]+(?:and[\s-]+)?)?)+", re.IGNORECASE)
# Relative quantities are computed numbers: refused in the model's part.
_RELATIVE = re.compile(r"\b(?:twice|double[sd]?|triple[sd]?|half|halved|dozens?|thrice|quarters?|thirds?|fifths?|tenths?|"
                       r"percent(?:age)? points?|several hundred)\b|"
                       r"一半|翻倍|翻番|成倍|倍|成|[壹贰叁肆伍陆柒捌玖拾佰仟]|[几数]十|[两三四五]分之", re.IGNORECASE)
_ZH_NUMERAL_RUN = re.compile(r"[零〇一二两三四五六七八九十百千万亿壹贰叁肆伍陆柒捌玖拾佰仟]+")
_ZH_DIGIT = {"零": 0, "〇": 0, "一": 1, "壹": 1, "二": 2, "贰": 2, "两": 2, "三": 3, "叁": 3, "四": 4, "肆": 4,
             "五": 5, "伍": 5, "六": 6, "陆": 6, "七": 7, "柒": 7, "八": 8, "捌": 8, "九": 9, "玖": 9}
_ZH_SCALE = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
# "一" is a number only before a measure word; in 一些, 一直, 一样, 一下, 一点 it is not.
_ZH_MEASURE = re.compile(r"^(?:个|次|分钟|分|小时|天|周|片|粒|毫克|毫升|度|岁|秒|倍|公斤|升|喷|下|点|毫米汞柱|%|％)")


def _en_words_value(run: str) -> float | None:
    tokens = [t for t in re.split(r"[\s-]+", run.lower()) if t and t != "and"]
    if not tokens or tokens == ["a"] or all(t in ("a", "one") for t in tokens):
        return None  # "a", "one of", "no one": not quantities
    total, current = 0, 0
    for t in tokens:
        if t == "a":
            current = current or 1
        elif t in _EN_UNITS:
            current += _EN_UNITS[t]
        elif t in _EN_TENS:
            current += _EN_TENS[t]
        elif t == "hundred":
            current = (current or 1) * 100
        elif t == "thousand":
            total += (current or 1) * 1000
            current = 0
    return float(total + current)


def _zh_value(run: str) -> float:
    if all(ch in _ZH_DIGIT for ch in run) and len(run) > 1:
        return float("".join(str(_ZH_DIGIT[ch]) for ch in run))  # 一九〇 read digit by digit
    total, section, digit = 0, 0, 0
    for ch in run:
        if ch in _ZH_DIGIT:
            digit = _ZH_DIGIT[ch]
        elif ch in ("万", "亿"):
            total += (section + digit) * (10000 if ch == "万" else 100000000)
            section = digit = 0
        else:
            section += (digit or 1) * _ZH_SCALE[ch]
            digit = 0
    return float(total + section + digit)


def part_numbers(text: str) -> tuple[list[float], bool]:
    """(every number stated in `text`, whether a number was written in a form we cannot read)."""
    plain = unicodedata.normalize("NFKC", text)
    unreadable = any(unicodedata.category(ch) in ("No", "Nl") for ch in plain) or bool(_RELATIVE.search(plain))
    found = list(numbers_in(plain))
    for m in _EN_NUMBER_RUN.finditer(plain):
        value = _en_words_value(m.group())
        if value is not None:
            found.append(value)
    for m in _ZH_NUMERAL_RUN.finditer(plain):
        run = m.group()
        if run == "一":  # 一次, 一些, 一直: "a", like English "one", never a quantity we check
            continue
        if run in ("万", "亿", "千", "百"):  # 万一 ("in case"), 千万 ("by all means"): refuse, unsure
            unreadable = True
            continue
        found.append(_zh_value(run))
    return found, unreadable


_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_DIGIT_ZH = "零一二三四五六七八九"


def _emergency_in_words(text: str, number: str) -> bool:
    """The emergency number spelt out ("nine nine nine", 九九九): the frame says it, the model must not."""
    if not number.isdigit():
        return False
    spelt = r"[\s-]+".join(_DIGIT_WORDS[int(d)] for d in number)
    zh = "".join(_DIGIT_ZH[int(d)] for d in number)
    return bool(re.search(spelt, text, re.IGNORECASE)) or zh in text or zh.replace("零", "〇") in text


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+|[。！？!?；;]", text) if s.strip()]


def check_part(text: str, facts: AlertFacts, audience: Audience) -> list[str]:
    """The names of the checks the model's part fails, in PART_CHECKS order; empty when it may be
    placed in front of Vigil's frame."""
    lang = facts.language
    plain = unicodedata.normalize("NFKC", text or "").strip()
    if not plain:
        return ["empty"]
    max_sentences, max_chars = PART_LIMITS[(audience, lang)]
    failed = []
    if (len(plain) > max_chars or len(_sentences(plain)) > max_sentences or "\n" in plain
            or re.search(r"^\s*(?:[-*•#>]|\d+[.)])", plain) or re.search(r"[<>{}\[\]`|]", plain)):
        failed.append("form")
    if any(not (_TOPIC_EN.search(x) or _TOPIC_ZH.search(x) or re.search(r"\d", x)) for x in _sentences(plain)):
        failed.append("off_topic")
    if (_URL.search(plain) or _EMAIL.search(plain) or _PHONE.search(plain) or "?" in plain or "？" in text
            or _REQUEST_EN.search(plain) or _REQUEST_ZH.search(plain)
            or re.search(rf"(?<!\d){re.escape(facts.emergency_number)}(?!\d)", plain)
            or _emergency_in_words(plain, facts.emergency_number)):
        failed.append("contact")
    if _DISMISS_EN.search(plain) or _DISMISS_ZH.search(plain):
        failed.append("dismissal")
    patient = audience == "patient"
    if (_DIRECT_EN.search(plain) or _DIRECT_ZH.search(plain) or re.search(r"!|！", text)
            or (patient and (_INSTRUCT_EN.search(plain) or _INSTRUCT_ZH.search(plain)
                             or (lang == "en" and any(not _OPENERS_EN.match(x.strip(" \"'(")) for x in _sentences(plain)))))):
        failed.append("instruction")
    if patient and (_COMMIT_EN.search(plain) or _COMMIT_ZH.search(plain)):
        failed.append("commitment")
    if (_REASSURE_EN.search(plain) or _REASSURE_ZH.search(plain)
            or (facts.category == "clinical" and (facts.severity in ("high", "critical") or not patient)
                and (_MINIMISE_EN.search(plain) or _MINIMISE_ZH.search(plain)))):
        failed.append("reassurance")
    if (_DIAGNOSIS_EN.search(plain) or _DIAGNOSIS_ZH.search(plain)
            or (patient and (_DIAGNOSIS_PATIENT_EN.search(plain) or _DIAGNOSIS_PATIENT_ZH.search(plain)))):
        failed.append("diagnosis")
    numbers, unreadable = part_numbers(plain)
    allowed = facts.supported_numbers
    if unreadable or any(round(abs(n), 6) not in allowed for n in numbers):
        failed.append("unsupported_number")
    return failed
