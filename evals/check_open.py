"""Check a question file (default evals/open.jsonl) against the corpus described beside it (NAME-corpus.json).

Run from the repository root (the BBC file is read from ../shared/data/, as the corpus file says):

    python3 evals/check_open.py                      # evals/open.jsonl against evals/open-corpus.json
    python3 evals/check_open.py evals/dev.jsonl      # evals/dev.jsonl against evals/dev-corpus.json
    python3 evals/check_open.py evals/tuning.jsonl   # evals/tuning.jsonl against evals/tuning-corpus.json
    python3 evals/check_open.py evals/quiz.jsonl     # evals/quiz.jsonl against evals/quiz-corpus.json (Reuters, no seeds)
    python3 evals/check_open.py evals/typed.jsonl    # evals/typed.jsonl against evals/typed-corpus.json
    python3 evals/check_open.py evals/chat.jsonl     # evals/chat.jsonl against evals/chat-corpus.json
    python3 evals/check_open.py evals/news.jsonl     # evals/news.jsonl against evals/news-corpus.json (no seeds)

Checks: every line parses; ids are unique; the fields each kind needs are present and well-typed; every evidence
string is an exact substring of a corpus article (a seed file, or the `text` of a sampled BBC or Reuters record); the
corpus holds both seed articles when its "paths" is not empty, and none when it is (quiz-corpus.json and
news-corpus.json); no evidence comes from the reader comments of seeds/002 (from the line starting `Tags:` on); for a
factoid, the normalised first answer occurs as whole tokens in the normalised evidence; for an open question, every
key-fact phrasing is 1-4 words and occurs (case-insensitive) in the evidence; unanswerable records have empty
answers/evidence/key_facts and a valid `unanswerable_kind`; ids look like the file's first letter plus three digits
(o001 in open.jsonl, d001 in dev.jsonl, t001 in tuning.jsonl, q001 in quiz.jsonl, u001 in unseen.jsonl, f001 in
fresh.jsonl, t001 again in typed.jsonl, c001 in chat.jsonl and n001 in news.jsonl: ids are unique within a file
only); no question repeats one of evals/seeds.jsonl verbatim; no question is identical (ignoring case, punctuation
and spacing) to one in another held-out set (open, dev, tuning, holdout, quiz, unseen, fresh, typed, chat, news), so
the test sets and the development sets do not overlap.
Prints counts; exits 1 on any error. Standard library only.
"""

from __future__ import annotations

import collections
import json
import re
import string
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "evals" / "open.jsonl"
CORPUS = ROOT / "evals" / "open-corpus.json"
OLD_SET = ROOT / "evals" / "seeds.jsonl"
# The held-out sets that must not share a question: the test sets and the development sets.
HELD_OUT_SETS = [ROOT / "evals" / f"{name}.jsonl" for name in ("open", "dev", "tuning", "holdout", "quiz", "unseen",
                                                                "fresh", "typed", "chat", "news")]
COMMENTED_SEED = "002_21e9abc1f7ceb01f.txt"
KINDS = {"factoid", "open"}
UNANSWERABLE_KINDS = {"off-topic", "near-topic", "trap"}
TEXT_SUFFIXES = {".txt", ".md", ".html"}

errors: list[str] = []


def error(where: str, message: str) -> None:
    errors.append(f"{where}: {message}")


def normalise(text: str) -> str:
    """SQuAD normalisation: lowercase, drop punctuation and articles, squeeze whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def question_key(text: str) -> str:
    """A question compared across sets: lowercase, punctuation dropped, whitespace squeezed."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(text.split())


def contains_tokens(haystack: str, needle: str) -> bool:
    h, n = normalise(haystack).split(), normalise(needle).split()
    if not n:
        return False
    return any(h[i : i + len(n)] == n for i in range(len(h) - len(n) + 1))


def load_corpus() -> tuple[dict[str, str], dict[str, str], set[str]]:
    """(usable text by article id, comment text by article id, the seed files' ids) for the corpus file (CORPUS)."""
    spec = json.loads(CORPUS.read_text(encoding="utf-8"))
    usable: dict[str, str] = {}
    comments: dict[str, str] = {}
    for rel in spec["paths"]:
        base = ROOT / rel
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for path in files:
            if path.suffix.lower() not in TEXT_SUFFIXES or path.stem.upper() == "README":
                continue
            with open(path, encoding="utf-8", newline="") as handle:
                text = handle.read()
            key = path.relative_to(ROOT).as_posix()
            if path.name == COMMENTED_SEED:
                cut = text.index("\nTags:")
                usable[key], comments[key] = text[:cut], text[cut:]
            else:
                usable[key] = text
    n_seed = len(usable)
    seed_keys = set(usable)
    expected_seeds = 2 if spec["paths"] else 0  # quiz-corpus.json and news-corpus.json have no seed articles ("paths": [])
    if n_seed != expected_seeds:
        error(CORPUS.name, f"expected {expected_seeds} seed articles, found {n_seed}: {sorted(usable)}")
    for entry in spec["jsonl"]:
        path = (ROOT / entry["file"]).resolve()
        wanted = entry["ids"]
        if len(wanted) != len(set(wanted)):
            error(CORPUS.name, "duplicate ids")
        wanted_set = set(wanted)
        found: dict[str, dict] = {}
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                if record["id"] in wanted_set:
                    found[record["id"]] = record
        missing = wanted_set - set(found)
        if missing:
            error(CORPUS.name, f"ids not in {path}: {sorted(missing)}")
        for rid, record in found.items():
            usable[rid] = record["text"]
        categories = collections.Counter(r["category"] for r in found.values() if "category" in r)
        print(f"corpus: {n_seed} seed files + {len(found)} records from {entry['file']}"
              + (f" ({dict(sorted(categories.items()))})" if categories else ""))
    return usable, comments, seed_keys


def main() -> int:
    global QUESTIONS, CORPUS
    if len(sys.argv) > 2:
        print("usage: python3 evals/check_open.py [QUESTIONS.jsonl]  (default evals/open.jsonl)")
        return 2
    if len(sys.argv) == 2:
        QUESTIONS = Path(sys.argv[1]).resolve()
        CORPUS = QUESTIONS.with_name(QUESTIONS.stem + "-corpus.json")
    print(f"questions: {QUESTIONS.relative_to(ROOT) if QUESTIONS.is_relative_to(ROOT) else QUESTIONS}; "
          f"corpus: {CORPUS.name}")
    if not QUESTIONS.is_file() or not CORPUS.is_file():
        print(f"missing {QUESTIONS if not QUESTIONS.is_file() else CORPUS}")
        return 1
    id_prefix = QUESTIONS.stem[:1].lower()
    usable, comments, seed_keys = load_corpus()
    old_questions = set()
    if OLD_SET.exists():
        for line in OLD_SET.read_text(encoding="utf-8").splitlines():
            if line.strip():
                old_questions.add(json.loads(line)["question"].strip().lower())
    other_questions: dict[str, str] = {}  # question_key -> "file:id" in the other held-out set(s)
    for other in HELD_OUT_SETS:
        if other.resolve() == QUESTIONS.resolve() or not other.exists():
            continue
        for line in other.read_text(encoding="utf-8").splitlines():
            if line.strip():
                o = json.loads(line)
                other_questions.setdefault(question_key(o.get("question", "")), f"{other.name}:{o.get('id')}")

    records = []
    for number, line in enumerate(QUESTIONS.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            error(f"line {number}", "blank line")
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            error(f"line {number}", f"does not parse: {exc}")
            continue
        if not isinstance(record, dict):
            error(f"line {number}", "not a JSON object")
            continue
        records.append(record)

    ids = [r.get("id") for r in records]
    for rid, n in collections.Counter(ids).items():
        if n > 1:
            error(str(rid), f"id used {n} times")

    counts: collections.Counter[str] = collections.Counter()
    for r in records:
        where = str(r.get("id"))
        if not isinstance(r.get("id"), str) or not re.fullmatch(re.escape(id_prefix) + r"\d{3}", r["id"]):
            error(where, f"id must look like {id_prefix}001")
        q = r.get("question")
        if not isinstance(q, str) or not q.strip():
            error(where, "question missing or empty")
            q = ""
        if q.strip().lower() in old_questions:
            error(where, "question repeats evals/seeds.jsonl verbatim")
        if question_key(q) in other_questions:
            error(where, f"question is identical to {other_questions[question_key(q)]} (ignoring case and punctuation)")
        kind = r.get("kind")
        if kind not in KINDS:
            error(where, f"kind must be one of {sorted(KINDS)}, got {kind!r}")
        if not isinstance(r.get("answerable"), bool):
            error(where, "answerable must be true or false")
        for field in ("answers", "evidence"):
            if not isinstance(r.get(field), list) or not all(isinstance(x, str) for x in r.get(field, [])):
                error(where, f"{field} must be a list of strings")
        if "history" in r:
            h = r["history"]
            if not isinstance(h, list) or not h or not all(isinstance(x, str) and x.strip() for x in h):
                error(where, "history must be a non-empty list of strings")
            counts["follow-up"] += 1
        answers, evidence = r.get("answers") or [], r.get("evidence") or []

        if r.get("answerable") is False:
            uk = r.get("unanswerable_kind")
            if uk not in UNANSWERABLE_KINDS:
                error(where, f"unanswerable_kind must be one of {sorted(UNANSWERABLE_KINDS)}, got {uk!r}")
            if answers or evidence or r.get("key_facts"):
                error(where, "unanswerable record must have empty answers, evidence and key_facts")
            counts[f"unanswerable/{uk}"] += 1
            counts[f"unanswerable/{kind}"] += 1
            continue
        if "unanswerable_kind" in r:
            error(where, "answerable record has unanswerable_kind")
        if not evidence:
            error(where, "answerable record without evidence")

        sources: set[str] = set()
        for quote in evidence:
            if not quote.strip():
                error(where, "empty evidence string")
                continue
            hits = {k for k, text in usable.items() if quote in text}
            if not hits:
                if any(quote in text for text in comments.values()):
                    error(where, f"evidence comes from the reader comments of {COMMENTED_SEED}: {quote[:70]!r}")
                else:
                    error(where, f"evidence is not an exact substring of any corpus article: {quote[:70]!r}")
            sources |= {"seeds" if k in seed_keys else k.split("-", 1)[0] for k in hits}
        joined = "\n".join(evidence)

        if kind == "factoid":
            if not answers:
                error(where, "factoid without answers")
            elif not contains_tokens(joined, answers[0]):
                error(where, f"normalised first answer {answers[0]!r} not in the evidence")
            if r.get("key_facts"):
                error(where, "factoid with key_facts")
        elif kind == "open":
            kf = r.get("key_facts")
            if not isinstance(kf, list) or not kf or len(kf) > 3:
                error(where, "open question needs 1-3 key_facts")
                kf = []
            if answers:
                error(where, "open question should have empty answers")
            for fact in kf:
                if not isinstance(fact, list) or not fact or not all(isinstance(p, str) for p in fact):
                    error(where, f"key fact must be a non-empty list of strings: {fact!r}")
                    continue
                if not any(p.lower() in joined.lower() for p in fact):
                    error(where, f"no phrasing of key fact {fact!r} occurs in the evidence")
                for p in fact:
                    if not 1 <= len(p.split()) <= 4:
                        error(where, f"key-fact phrasing must be 1-4 words: {p!r}")
                    if p.lower() not in joined.lower():
                        error(where, f"key-fact phrasing {p!r} does not occur in the evidence")
        counts[f"answerable/{kind}"] += 1
        corpus = "+".join(sorted(sources)) or "none"
        counts[f"answerable/{corpus}"] += 1

    total = len(records)
    answerable = sum(1 for r in records if r.get("answerable") is True)
    print(f"{total} questions: {answerable} answerable, {total - answerable} unanswerable")
    for key in sorted(counts):
        print(f"  {key}: {counts[key]}")
    if errors:
        print(f"{len(errors)} ERRORS:")
        for line in errors:
            print("  " + line)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
